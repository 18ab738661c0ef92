/* dcfs.h - dcachefs internals shared by the files of fs/
 * SPDX-License-Identifier: MIT
 *
 * Where to start reading ("what happens when I cat a key"):
 *   main.c   options, cache open, mount, the multithreaded loop
 *   ops.c    the FUSE callbacks (dcfs_lookup, dcfs_open, dcfs_read, ...)
 *   tree.c   the namespace: what a path is, directory listings, mkdir'd dirs
 *   paths.c  key <-> path mapping and the frozen .keys/ escaping
 *   inode.c  inode numbers <-> paths, lookup counts
 *   read.c   read handles: value file descriptors (splice) or memory
 *   write.c  write handles: spooling and atomic commit
 *   ctl.c    the .ctl/ control files
 *   xattr.c  the user.dcache.* extended attributes
 *   format.c numbers and human units, value rendering
 *   errno.c  DC_* codes -> errno (the only place)
 *   service.c log destinations, SIGHUP log reopening, sd_notify
 *   coherence.c the thread that tells the kernel what others changed
 *
 * fs/ talks to the cache only through dcache.h; it never sees SQL.
 */
#ifndef DCFS_H
#define DCFS_H

#define FUSE_USE_VERSION 312

#include <dcache.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define DCFS_VERSION "0.1.0"

/* The reserved names at the root of the mount. */
#define DCFS_KEYS_DIR ".keys"
#define DCFS_CTL_DIR  ".ctl"

/* What an inode is.  The kind is decided at lookup and never changes for
 * an inode; when a path changes kind (a key "a" is deleted and "a/b"
 * appears) the path gets a new inode. */
enum dcfs_kind {
	DCFS_ROOT = 0,
	DCFS_DIR,          /* a directory implied by keys, or mkdir'd */
	DCFS_FILE,         /* a key: "a/b" or ".keys/<type>/<escaped>" */
	DCFS_KEYS,         /* .keys */
	DCFS_KEYS_TYPE,    /* .keys/int, .keys/str, ... */
	DCFS_CTL,          /* .ctl */
	DCFS_CTL_SETTINGS, /* .ctl/settings */
	DCFS_CTL_FILE,     /* .ctl/stats, .ctl/cull, ... */
	DCFS_CTL_SETTING,  /* .ctl/settings/NAME */
};

static inline int dcfs_kind_is_dir(enum dcfs_kind k)
{
	return k != DCFS_FILE && k != DCFS_CTL_FILE && k != DCFS_CTL_SETTING;
}

/* ------------------------------------------------------------------ */
/* Options and the filesystem object                                  */
/* ------------------------------------------------------------------ */

struct dcfs_opts {
	double entry_timeout;    /* seconds the kernel may cache names */
	double attr_timeout;     /* seconds the kernel may cache attributes */
	double negative_timeout; /* seconds the kernel may cache "no such" */
	/* Seconds between polls for changes made by others (the coherence
	 * bound); 0 with -o strict, which caches nothing in the kernel. */
	double coherence;
	double default_expire; /* for keys created here; NaN: none */
	int ro;
	int strict; /* no kernel caching at all (coherence bound 0) */
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

struct dcfs_itable;
struct dcfs_xdirs;
struct dcfs_ctl;
struct dcfs_coh;

/* The whole filesystem; the userdata of the FUSE session. */
struct dcfs {
	dc_cache *cache;
	struct dcfs_opts opts;
	struct dcfs_itable *itable;
	struct dcfs_xdirs *xdirs;
	struct dcfs_ctl *ctl;
	/* Values at least this long are spooled to a temporary file in the
	 * cache directory (the cache's disk_min_file_size, read at mount). */
	uint64_t spool_limit;
	struct timespec mount_time;
	struct fuse_session *se; /* for notifications to the kernel */
	struct dcfs_coh *coh;    /* the coherence thread, or NULL */
};

/* Every open file handle (fi->fh) starts with this. */
enum dcfs_fh_kind {
	DCFS_FH_READ = 1,
	DCFS_FH_WRITE,
	DCFS_FH_CTL,
	DCFS_FH_DIR,
};

struct dcfs_fh {
	enum dcfs_fh_kind kind;
	/* The open holds one reference until RELEASE, and a reply in
	 * flight holds one: the kernel may send RELEASE as soon as it has
	 * consumed a READ reply, before our writev has returned. */
	int refs;
	/* The list of open handles (ops.c). */
	struct dcfs_fh *prev, *next;
	int listed;
};

/* ------------------------------------------------------------------ */
/* errno.c                                                            */
/* ------------------------------------------------------------------ */

/* dcfs_errno - the errno for a libdcache return code (0 for 0).  Positive
 * values are errno already; negative values that are not DC_* codes are
 * negated errnos (dc_cache_mkstemp). */
int dcfs_errno(int rc);

/* Set by -d: also log FUSE_LOG_INFO and FUSE_LOG_DEBUG messages. */
extern int dcfs_verbose;

/* dcfs_log - log a message (libfuse's logger: stderr in the foreground). */
void dcfs_log(enum fuse_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The dc_log_fn installed in the cache. */
void dcfs_dc_log(void *arg, enum dc_log_level level, const char *msg);

/* ------------------------------------------------------------------ */
/* service.c                                                          */
/* ------------------------------------------------------------------ */

enum dcfs_log_dest {
	DCFS_LOG_STDERR = 0, /* the foreground (and the journal) */
	DCFS_LOG_SYSLOG,     /* the background, without -o log= */
	DCFS_LOG_FILE,       /* -o log=FILE, reopened on SIGHUP */
};

/* dcfs_log_open - send every later log message (ours and libfuse's) to
 * @dest.  For DCFS_LOG_FILE, @path (absolute, borrowed for the life of
 * the process) is opened for appending onto stderr.  0 or an errno. */
int dcfs_log_open(enum dcfs_log_dest dest, const char *path);

/* dcfs_hup_reopens_log - make SIGHUP reopen the log file (if there is
 * one) instead of ending the session.  Call after
 * fuse_set_signal_handlers.  0 or an errno. */
int dcfs_hup_reopens_log(void);

/* dcfs_notify - send @state ("READY=1", "STOPPING=1") to systemd's
 * $NOTIFY_SOCKET; nothing when it is unset.  Failures are logged.
 * 0 or an errno. */
int dcfs_notify(const char *state);

/* ------------------------------------------------------------------ */
/* format.c                                                           */
/* ------------------------------------------------------------------ */

#define DCFS_NUM_MAX 32 /* room for any rendered int64 or double */

/* dcfs_format_float - Python's repr() of a double ("1.0", "1e+16",
 * "inf", "nan"): the shortest string that reads back as the same double.
 * Returns the length written to @out (NUL-terminated). */
size_t dcfs_format_float(double x, char out[DCFS_NUM_MAX]);

/* dcfs_parse_int64 - a whole decimal integer ("-12"); 0 or EINVAL /
 * ERANGE. */
int dcfs_parse_int64(const char *s, size_t len, int64_t *out);

/* dcfs_parse_double - a whole floating-point number; 0 or EINVAL. */
int dcfs_parse_double(const char *s, size_t len, double *out);

/* dcfs_parse_size - a byte count with an optional binary unit: "4096",
 * "512K", "2G", "1.5GiB".  0 or EINVAL / ERANGE. */
int dcfs_parse_size(const char *s, uint64_t *out);

/* dcfs_parse_duration - seconds with an optional unit: "90", "1.5",
 * "500ms", "30s", "10m", "1h", "2d", "1w".  0 or EINVAL. */
int dcfs_parse_duration(const char *s, double *out);

/* dcfs_parse_setting - the value of the cache setting @name written as
 * text: eviction_policy and sqlite_journal_mode are text, every other
 * setting an integer (sizes take units).  @text need not be
 * NUL-terminated; the TEXT result points into @text.  0 or EINVAL. */
int dcfs_parse_setting(const char *name, const char *text, size_t len,
		       struct dc_value *out);

/* dcfs_value_render - the bytes a reader of a value sees: text as UTF-8,
 * int in decimal, float as dcfs_format_float, bytes and pickle raw.
 * Sets *data (into @v's data or @num) and returns the length. */
size_t dcfs_value_render(const struct dc_value *v, char num[DCFS_NUM_MAX],
			 const void **data);

/* dcfs_trim - the length of @s without trailing whitespace/newlines. */
size_t dcfs_trim(const char *s, size_t len);

/* ------------------------------------------------------------------ */
/* paths.c: keys <-> paths                                            */
/* ------------------------------------------------------------------ */

/* dcfs_name_valid - 1 if @name (@len bytes) can be a path component:
 * non-empty, not "." or "..", at most 255 bytes, no '/' and no NUL. */
int dcfs_name_valid(const char *name, size_t len);

/* dcfs_key_is_path - 1 if the text key is directly a path: every
 * '/'-separated part is a valid name and the first part is not one of
 * the reserved names .keys and .ctl. */
int dcfs_key_is_path(const char *key, size_t len);

/* dcfs_utf8_valid - 1 if Python would decode the bytes as UTF-8. */
int dcfs_utf8_valid(const void *data, size_t len);

/* dcfs_type_dir - the folder of a key type under .keys ("int", "float",
 * "bytes", "str", "pickle"); NULL for NONE. */
const char *dcfs_type_dir(enum dc_type type);

/* dcfs_type_from_dir - the inverse; DC_TYPE_NONE if unknown. */
enum dc_type dcfs_type_from_dir(const char *name);

/* dcfs_key_escape - the name of @key inside .keys/<type>/ (see
 * docs/fs.md, "Escaping").  Writes a NUL-terminated name into @out.
 * Returns its length, or -ENAMETOOLONG if it would exceed 255 bytes. */
int dcfs_key_escape(const struct dc_value *key, char out[256]);

/* dcfs_name_unescape - the key named @name inside .keys/<type>/.
 * Bytes go into @buf; only the canonical spelling of a key is accepted.
 * Returns 0, or EINVAL for a name that is no key's name. */
int dcfs_name_unescape(enum dc_type type, const char *name, struct dc_buf *buf,
		       struct dc_value *key);

/* dcfs_path_key - the key of a DCFS_FILE path ("a/b" or
 * ".keys/<type>/<escaped>").  Returns 0 or EINVAL. */
int dcfs_path_key(const char *path, struct dc_buf *buf, struct dc_value *key);

/* dcfs_path_join - "@dir/@name" (or @name when @dir is "") in new memory;
 * NULL if out of memory. */
char *dcfs_path_join(const char *dir, const char *name);

/* ------------------------------------------------------------------ */
/* inode.c                                                            */
/* ------------------------------------------------------------------ */

/* What the kernel was last told about an inode, to tell when it went
 * stale.  For a DCFS_FILE: the key's metadata; for a DCFS_DIR: only
 * whether it exists. */
struct dcfs_fp {
	int known;   /* 0: nothing told yet */
	int present; /* the key is live / the directory exists */
	enum dc_type type;
	uint64_t size; /* as a reader sees it */
	double store_time;
	double expire_time; /* NaN: none */
};

/* A snapshot of an inode, copied out of the table. */
struct dcfs_node {
	fuse_ino_t ino;
	enum dcfs_kind kind;
	char *path;   /* owned; "" for the root */
	int attached; /* 0: unlinked or replaced; the path names another */
	struct dcfs_fp ver; /* a key's: the value version it stands for */
};

void dcfs_node_release(struct dcfs_node *node);

int dcfs_itable_new(struct dcfs_itable **out);
void dcfs_itable_free(struct dcfs_itable *t);

/* dcfs_inode_get - copy inode @ino into @node.  ENOENT if unknown. */
int dcfs_inode_get(struct dcfs_itable *t, fuse_ino_t ino,
		   struct dcfs_node *node);

/* dcfs_inode_ref - the inode of (@path, @kind), created if needed, with
 * its lookup count raised by one (call once per fuse_reply_entry or
 * fuse_reply_create).  An inode of another kind at the path is detached
 * (it lives on until forgotten), and so is a key's inode of another
 * value version than @ver (NULL: not a key) unless it is open for
 * writing, and, with @for_write, one that is open for reading.
 * Returns the ino, or 0 if out of memory. */
fuse_ino_t dcfs_inode_ref(struct dcfs_itable *t, const char *path,
			  enum dcfs_kind kind, const struct dcfs_fp *ver,
			  int for_write);

/* dcfs_inode_peek - the ino attached at @path, or 0. */
fuse_ino_t dcfs_inode_peek(struct dcfs_itable *t, const char *path);

/* dcfs_inode_forget - drop @n lookups; the inode is freed at zero. */
void dcfs_inode_forget(struct dcfs_itable *t, fuse_ino_t ino, uint64_t n);

/* dcfs_inode_detach - the inode at @path no longer names anything
 * (unlink, rmdir); it stays known by number until forgotten. */
void dcfs_inode_detach(struct dcfs_itable *t, const char *path);

/* dcfs_inode_move - rename: the inode at @from (and, for a directory,
 * every inode below it) now lives at @to; whatever was at @to is
 * detached.  Returns 0 or ENOMEM. */
int dcfs_inode_move(struct dcfs_itable *t, const char *from, const char *to);

/* dcfs_inode_open_read - a read handle of the value version @cur opens
 * on @ino.  *same: 1 if @cur is the inode's version (its cached pages
 * are right); else an unread attached inode takes @cur as its version
 * (and is marked for a re-check), and one with readers is detached:
 * ESTALE, so that the VFS looks the name up again.  0 counts a reader
 * (dcfs_inode_close_read ends it), ESTALE or ENOENT. */
int dcfs_inode_open_read(struct dcfs_itable *t, fuse_ino_t ino,
			 const struct dcfs_fp *cur, int *same);
void dcfs_inode_close_read(struct dcfs_itable *t, fuse_ino_t ino);

/* dcfs_inode_writable - 0 if @ino may be opened for writing; ESTALE
 * (and detached) if it is detached or open for reading: the VFS looks
 * the name up again and the writer gets an inode of its own. */
int dcfs_inode_writable(struct dcfs_itable *t, fuse_ino_t ino);

/* dcfs_inode_writers - count write handles of @ino (@delta +1 / -1). */
void dcfs_inode_writers(struct dcfs_itable *t, fuse_ino_t ino, int delta);

/* dcfs_inode_adopt - @ino now stands for value version @ver (a commit
 * through it). */
void dcfs_inode_adopt(struct dcfs_itable *t, fuse_ino_t ino,
		      const struct dcfs_fp *ver);

/* dcfs_inode_retire - the value at @ino's path changed: detach it (it
 * lives on for its readers until forgotten).  0 if it is open for
 * writing (then it stays), else 1. */
int dcfs_inode_retire(struct dcfs_itable *t, fuse_ino_t ino);

/* dcfs_fp_of_item - the fingerprint of a live key's metadata (NULL: a
 * directory that exists). */
void dcfs_fp_of_item(struct dcfs_fp *fp, const struct dc_item *item);

/* dcfs_fp_same_value - 1 if @a and @b have the same presence, type, size
 * and store time (the cached pages are still right). */
int dcfs_fp_same_value(const struct dcfs_fp *a, const struct dcfs_fp *b);

/* dcfs_fp_same_expire - 1 if the expire times are equal (NaN too). */
int dcfs_fp_same_expire(const struct dcfs_fp *a, const struct dcfs_fp *b);

/* dcfs_inode_epoch - the scan epoch: read it before reading the cache for
 * a reply, and pass it to dcfs_inode_note after replying. */
uint64_t dcfs_inode_epoch(struct dcfs_itable *t);

/* dcfs_inode_note - record @fp as what the kernel was told about @ino.
 * If a scan began since @epoch was read, the scan may have missed this
 * reply: the inode is re-checked at the next tick. */
void dcfs_inode_note(struct dcfs_itable *t, fuse_ino_t ino,
		     const struct dcfs_fp *fp, uint64_t epoch);

/* An inode as a scan sees it. */
struct dcfs_snap {
	fuse_ino_t ino;
	enum dcfs_kind kind;
	char *path;
	struct dcfs_fp fp;
	struct dcfs_fp ver; /* the value version the inode stands for */
	uint64_t seq;       /* changes with every note */
};

/* dcfs_inode_snapshot - start a scan: a new epoch, and a copy of every
 * attached file and directory inode with a known fingerprint (@all), or
 * only of those whose note raced with an earlier scan (!@all).  Clears
 * those re-check marks.  0 or ENOMEM. */
int dcfs_inode_snapshot(struct dcfs_itable *t, int all, struct dcfs_snap **out,
			size_t *n);
void dcfs_snap_free(struct dcfs_snap *v, size_t n);

/* dcfs_inode_mark - mark @ino for a re-check; 0 if it is not a known,
 * attached file or directory with a fingerprint. */
int dcfs_inode_mark(struct dcfs_itable *t, fuse_ino_t ino);

/* dcfs_inode_rechecks - how many inodes wait for a re-check. */
size_t dcfs_inode_rechecks(struct dcfs_itable *t);

/* dcfs_inode_set_fp - a scan found @fp at @ino: record it unless a note
 * came since the snapshot (@seq). */
void dcfs_inode_set_fp(struct dcfs_itable *t, fuse_ino_t ino, uint64_t seq,
		       const struct dcfs_fp *fp);

/* dcfs_inode_count - the number of known inodes. */
size_t dcfs_inode_count(struct dcfs_itable *t);

/* A file with an uncommitted write handle reports the handle's size. */
void dcfs_inode_set_writer(struct dcfs_itable *t, fuse_ino_t ino,
			   const uint64_t *size);
void dcfs_inode_clear_writer(struct dcfs_itable *t, fuse_ino_t ino,
			     const uint64_t *size);
int dcfs_inode_writer_size(struct dcfs_itable *t, fuse_ino_t ino,
			   uint64_t *size);

/* ------------------------------------------------------------------ */
/* tree.c: the namespace                                              */
/* ------------------------------------------------------------------ */

int dcfs_xdirs_new(struct dcfs_xdirs **out);
void dcfs_xdirs_free(struct dcfs_xdirs *x);

/* dcfs_resolve - what @name inside @parent is.  On success *path is the
 * child's path (owned by the caller) and *kind its kind; for a key,
 * *item (may be NULL, then @buf too) receives what dcfs_key_item gives.
 * Returns 0, ENOENT, ENAMETOOLONG, ENOTDIR, or an errno. */
int dcfs_resolve(struct dcfs *fs, const struct dcfs_node *parent,
		 const char *name, char **path, enum dcfs_kind *kind,
		 struct dc_item *item, struct dc_buf *buf);

/* dcfs_key_item - metadata of the live key at a DCFS_FILE path; ->size is
 * the length a reader sees (numbers rendered).  0, ENOENT or an errno. */
int dcfs_key_item(struct dcfs *fs, const char *path, struct dc_item *item,
		  struct dc_buf *buf);

/* dcfs_get_value - dc_cache_get that does not mistake a value file
 * replaced under it (by a concurrent writer) for a missing key. */
int dcfs_get_value(struct dcfs *fs, const struct dc_value *key,
		   struct dc_buf *buf, struct dc_item *item, unsigned flags);

/* dcfs_item_sized - set ->size of a key's metadata to the length a
 * reader sees (an INT or FLOAT is read as its decimal rendering). */
void dcfs_item_sized(struct dc_item *item);

/* dcfs_dir_exists / dcfs_dir_has_children - for a DCFS_DIR path. */
int dcfs_dir_exists(struct dcfs *fs, const char *path);
/* dcfs_xdir_exists - @path is, or lies above, a mkdir'd directory (no
 * cache access). */
int dcfs_xdir_exists(struct dcfs *fs, const char *path);
int dcfs_dir_has_children(struct dcfs *fs, const char *path);

/* mkdir'd directories, kept until rmdir or unmount. */
int dcfs_xdir_add(struct dcfs *fs, const char *path);
void dcfs_xdir_remove(struct dcfs *fs, const char *path);
int dcfs_xdir_move(struct dcfs *fs, const char *from, const char *to);

/* A directory listing, built at opendir (readdir offsets index it). */
struct dcfs_dirent {
	char *name;
	enum dcfs_kind kind;
};

struct dcfs_dir {
	struct dcfs_fh fh;
	char *path; /* of the directory */
	struct dcfs_dirent *ents;
	size_t n;
	size_t cap;
};

/* dcfs_dir_list - fill @dir (zeroed by the caller) with the entries of
 * directory @node, "." and ".." first.  0 or an errno. */
int dcfs_dir_list(struct dcfs *fs, const struct dcfs_node *node,
		  struct dcfs_dir *dir);
void dcfs_dir_release(struct dcfs_dir *dir);

/* dcfs_tree_rename - move the key at file path @from to @to (replacing it
 * unless @noreplace), or every key below directory @from.  0 or an
 * errno (EEXIST with @noreplace, ENOTEMPTY for a non-empty target). */
int dcfs_tree_rename(struct dcfs *fs, enum dcfs_kind kind, const char *from,
		     const char *to, int noreplace);

/* dcfs_convert_key - store the value of @key converted to @type (INT,
 * FLOAT, TEXT or BYTES; its rendered bytes parsed), keeping its tag and
 * expiry, in one transaction.  0, EINVAL (the bytes are no such value),
 * ENOENT or an errno. */
int dcfs_convert_key(struct dcfs *fs, const struct dc_value *key,
		     enum dc_type type);

/* ------------------------------------------------------------------ */
/* read.c, write.c                                                    */
/* ------------------------------------------------------------------ */

/* dcfs_read_open - a read handle on inode @node holding the value of its
 * key: the value file's descriptor if it is file-backed, else its bytes.
 * *same: the value is the inode's version (see dcfs_inode_open_read).
 * 0, ENOENT, ESTALE or an errno. */
int dcfs_read_open(struct dcfs *fs, const struct dcfs_node *node,
		   struct dcfs_fh **out, int *same);
void dcfs_read_reply(fuse_req_t req, struct dcfs_fh *fh, size_t size,
		     off_t off);
void dcfs_read_close(struct dcfs_fh *fh);
/* Replies to READ from a descriptor (spliced) or from memory. */
void dcfs_reply_fd(fuse_req_t req, int fd, size_t size, off_t off);
void dcfs_reply_mem(fuse_req_t req, const char *data, size_t len, size_t size,
		    off_t off);

struct dcfs_wh;

/* dcfs_write_open - a write handle for inode @ino (a DCFS_FILE).
 * @flags: the open(2) flags (O_TRUNC, O_APPEND honoured).
 * @fresh: the key was just created empty; nothing to load. */
int dcfs_write_open(struct dcfs *fs, fuse_ino_t ino, int flags, int fresh,
		    struct dcfs_fh **out);
void dcfs_write_reply_read(fuse_req_t req, struct dcfs_fh *fh, size_t size,
			   off_t off);
/* Returns bytes written (>= 0) or a negative errno. */
ssize_t dcfs_write_data(struct dcfs_fh *fh, const char *data, size_t size,
			off_t off);
int dcfs_write_truncate(struct dcfs_fh *fh, uint64_t size);
/* dcfs_write_commit - store the pending content if anything changed since
 * the last commit.  0 or an errno. */
int dcfs_write_commit(struct dcfs_fh *fh);
/* dcfs_write_close - commit (errors are logged) and free. */
void dcfs_write_close(struct dcfs_fh *fh);
/* dcfs_copy_fd - copy all of @in (from offset 0) to @out at offset 0
 * (copy_file_range, falling back to read/write).  0 or an errno. */
int dcfs_copy_fd(int in, int out);
/* dcfs_truncate_path - truncate(2) without an open handle. */
int dcfs_truncate_path(struct dcfs *fs, fuse_ino_t ino, uint64_t size);

/* ------------------------------------------------------------------ */
/* ctl.c                                                              */
/* ------------------------------------------------------------------ */

int dcfs_ctl_new(struct dcfs_ctl **out);
void dcfs_ctl_free(struct dcfs_ctl *c);
/* dcfs_ctl_exists - 1 if @name is a file of .ctl/ (@settings 0) or of
 * .ctl/settings/ (@settings 1). */
int dcfs_ctl_exists(int settings, const char *name);
/* dcfs_ctl_mode - permission bits of a control file. */
mode_t dcfs_ctl_mode(enum dcfs_kind kind, const char *name);
/* Names for listings, NULL-terminated. */
const char *const *dcfs_ctl_names(void);
int dcfs_ctl_open(struct dcfs *fs, const struct dcfs_node *node, int flags,
		  struct dcfs_fh **out);
void dcfs_ctl_reply_read(fuse_req_t req, struct dcfs_fh *fh, size_t size,
			 off_t off);
ssize_t dcfs_ctl_write(struct dcfs_fh *fh, const char *data, size_t size);
void dcfs_ctl_close(struct dcfs_fh *fh);

/* ------------------------------------------------------------------ */
/* xattr.c                                                            */
/* ------------------------------------------------------------------ */

void dcfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   size_t size);
void dcfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   const char *value, size_t size, int flags);
void dcfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void dcfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ------------------------------------------------------------------ */
/* coherence.c                                                        */
/* ------------------------------------------------------------------ */

/* dcfs_coh_start - start the thread that polls the cache for changes
 * every opts.coherence seconds and invalidates what the kernel cached of
 * changed keys, on session @se mounted at @mnt.  Call after
 * fuse_daemonize (a fork keeps no threads).  Nothing to do (0) when
 * opts.coherence is 0.  0 or an errno. */
int dcfs_coh_start(struct dcfs *fs, struct fuse_session *se, const char *mnt);

/* dcfs_coh_stop - stop and join the thread (no-op if not running).
 * Call after the session loop ended, before unmounting. */
void dcfs_coh_stop(struct dcfs *fs);

/* dcfs_coh_sync - after a change the kernel did not see (a .ctl action,
 * an xattr write): scan now and wait (at most a few seconds) until the
 * kernel's caches are invalidated.  Never hold a lock across it. */
void dcfs_coh_sync(struct dcfs *fs);

/* What the thread did, for .ctl/stats. */
struct dcfs_coh_stats {
	uint64_t full_scans;     /* every known inode checked */
	uint64_t one_pass_scans; /* of those, by one pass over the cache */
	uint64_t partial_scans;  /* only marked inodes checked */
	uint64_t invalidated;    /* inodes the kernel was told about */
	double last_full_ms;     /* duration of the last full scan */
	size_t last_full_inodes; /* inodes it checked */
};

/* dcfs_coh_stats - copy the statistics; 0 (and zeros) if no thread runs
 * (-o strict), else 1. */
int dcfs_coh_stats(struct dcfs *fs, struct dcfs_coh_stats *out);

/* dcfs_coh_kick - scan at once, without waiting for it. */
void dcfs_coh_kick(struct dcfs *fs);

/* dcfs_coh_changed - the key at @path was changed through the mount: the
 * kernel saw it under that name, but not under the key's other name
 * (.keys/str/NAME for a plain path and back), which is invalidated now
 * (waiting for it if @wait, which needs that no kernel lock a notify
 * takes is held by the caller's request: not in unlink or rename). */
void dcfs_coh_changed(struct dcfs *fs, const char *path, int wait);

/* dcfs_coh_recheck - re-check inode @ino soon (not waited for). */
void dcfs_coh_recheck(struct dcfs *fs, fuse_ino_t ino);

/* ------------------------------------------------------------------ */
/* ops.c                                                              */
/* ------------------------------------------------------------------ */

extern const struct fuse_lowlevel_ops dcfs_ops;

/* dcfs_now - wall-clock time in seconds. */
double dcfs_now(void);

#endif /* DCFS_H */
