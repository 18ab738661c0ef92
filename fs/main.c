/* main.c - dcachefs: options, cache open, mount, the multithreaded loop
 * SPDX-License-Identifier: MIT
 *
 *   dcachefs [options] [CACHEDIR] MOUNTPOINT
 *
 * Order matters: every check that can fail with a clear reason (options,
 * mount point, cache directory, opening the cache) runs before the mount,
 * in the foreground, so that in the background we exit 0 only once the
 * mount is live (fuse_daemonize lets the parent exit after the mount).
 */
#include "dcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef NFS_SUPER_MAGIC
#define NFS_SUPER_MAGIC 0x6969
#endif

#define MAX_SETTINGS 32

/* What the command line asked for. */
struct cli {
	char *pos[2];
	int npos;
	int bad; /* a message was printed; exit non-zero */
	struct dcfs_opts opts;
	int strict;
	int allow_nfs;
	int has_fsname;
	int has_subtype;
	int shards;
	double timeout;
	char *log_file; /* -o log=FILE, made absolute */
	struct dc_setting settings[MAX_SETTINGS];
	char *setting_text[MAX_SETTINGS]; /* owned copies backing TEXT values */
	size_t nsettings;
};

static void usage(const char *prog)
{
	printf("usage: %s [options] [CACHEDIR] MOUNTPOINT\n"
	       "\n"
	       "Mounts a DiskCache cache directory: every key is a file.\n"
	       "CACHEDIR defaults to $XDG_CACHE_HOME/dcachefs (root: "
	       "/var/cache/dcachefs).\n"
	       "\n"
	       "dcachefs options (-o name=value; sizes take K/M/G/T, "
	       "durations s/m/h/d):\n"
	       "    -o size_limit=2G, cull_limit=N, eviction_policy=NAME,\n"
	       "       statistics=0|1, tag_index=0|1, disk_min_file_size=32K,\n"
	       "       sqlite_*=...     cache settings, stored in the cache\n"
	       "    -o shards=N         a FanoutCache of N shards (new dirs)\n"
	       "    -o timeout=DUR      SQLite busy timeout\n"
	       "    -o default_expire=DUR  expiry of keys created here\n"
	       "    -o coherence=DUR    how soon changes made by others show "
	       "(default 1s)\n"
	       "    -o entry_timeout=DUR, attr_timeout=DUR, "
	       "negative_timeout=DUR\n"
	       "                        kernel cache timeouts (default 60s, "
	       "60s, coherence)\n"
	       "    -o strict           no kernel caching (coherence bound "
	       "0)\n"
	       "    -o uid=N, gid=N, umask=OCTAL  owner and modes of files\n"
	       "    -o ro               read-only\n"
	       "    -o allow_nfs        allow a cache directory on NFS\n"
	       "    -o log=FILE         log to FILE (reopened on SIGHUP), not\n"
	       "                        stderr (foreground) or syslog "
	       "(background)\n"
	       "mount(8)'s own options (nofail, _netdev, noauto, auto, user,\n"
	       "users, defaults, comment=, x-*) are accepted and ignored.\n"
	       "\n",
	       prog);
}

static const char *setting_name(const char *name, size_t len)
{
	const char *const *n;

	for (n = dc_cache_setting_names(); *n; n++)
		if (strlen(*n) == len && strncmp(*n, name, len) == 0)
			return *n;
	return NULL;
}

/* Options that mount(8), fstab and systemd give every filesystem and
 * that mean nothing to this one (mount(8) acted on them already), and
 * atime flags libfuse 3.14 does not know (relatime is the kernel's
 * default anyway).  libfuse would refuse them all, so they are dropped;
 * rw, ro, nosuid, nodev, noexec, exec, suid, dev, atime, noatime, sync
 * and dirsync are libfuse's and reach the kernel. */
static int mount_generic_opt(const char *name, size_t len)
{
	static const char *const names[] = {
		"nofail",     "_netdev",     "noauto",        "auto",
		"user",       "nouser",      "users",         "owner",
		"group",      "defaults",    "comment",       "relatime",
		"norelatime", "strictatime", "nostrictatime", "diratime",
		"nodiratime", "lazytime",    "nolazytime",    "iversion",
		"noiversion", NULL,
	};
	const char *const *n;

	if (len >= 2 && strncmp(name, "x-", 2) == 0)
		return 1;
	for (n = names; *n; n++)
		if (strlen(*n) == len && strncmp(*n, name, len) == 0)
			return 1;
	return 0;
}

/* An absolute path for @path, which may not exist yet (the daemon
 * changes to / when it goes to the background). */
static char *absolute_path(const char *path)
{
	char *cwd, *abs = NULL;

	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (cwd && asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	free(cwd);
	return abs;
}

static int bad_value(struct cli *cli, const char *arg)
{
	fprintf(stderr, "dcachefs: bad value in -o %s\n", arg);
	cli->bad = 1;
	return -1;
}

/* fuse_opt_parse's callback: take our options (return 0), keep the rest
 * for libfuse and the kernel (return 1). */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cli *cli = data;
	const char *eq, *val, *name;
	size_t nlen;
	uint64_t u;
	char *end;
	long l;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (cli->npos == 2) {
			fprintf(stderr, "dcachefs: too many arguments: %s\n",
				arg);
			cli->bad = 1;
			return -1;
		}
		cli->pos[cli->npos] = strdup(arg);
		if (!cli->pos[cli->npos])
			return -1;
		cli->npos++;
		return 0;
	}
	if (key != FUSE_OPT_KEY_OPT || arg[0] == '-')
		return 1;
	eq = strchr(arg, '=');
	nlen = eq ? (size_t)(eq - arg) : strlen(arg);
	val = eq ? eq + 1 : "";
#define IS(s) (nlen == sizeof(s) - 1 && strncmp(arg, s, nlen) == 0)
	if (mount_generic_opt(arg, nlen))
		return 0;
	if (IS("log")) {
		free(cli->log_file);
		cli->log_file = *val ? absolute_path(val) : NULL;
		if (!cli->log_file)
			return bad_value(cli, arg);
		return 0;
	}
	if (IS("ro")) {
		cli->opts.ro = 1;
		return 1; /* the kernel enforces it too */
	}
	if (IS("fsname"))
		cli->has_fsname = 1;
	if (IS("subtype"))
		cli->has_subtype = 1;
	if (IS("strict")) {
		cli->strict = 1;
		return 0;
	}
	if (IS("allow_nfs")) {
		cli->allow_nfs = 1;
		return 0;
	}
	if (IS("uid") || IS("gid") || IS("umask")) {
		errno = 0;
		l = strtol(val, &end, IS("umask") ? 8 : 10);
		if (!*val || *end || errno || l < 0 ||
		    (IS("umask") && l > 0777))
			return bad_value(cli, arg);
		if (IS("uid"))
			cli->opts.uid = (uid_t)l;
		else if (IS("gid"))
			cli->opts.gid = (gid_t)l;
		else
			cli->opts.umask = (mode_t)l;
		return 0;
	}
	if (IS("entry_timeout") || IS("attr_timeout") ||
	    IS("negative_timeout") || IS("default_expire") || IS("timeout") ||
	    IS("coherence")) {
		double d;

		if (dcfs_parse_duration(val, &d) ||
		    (!IS("default_expire") && (isnan(d) || d < 0)))
			return bad_value(cli, arg);
		if (IS("entry_timeout"))
			cli->opts.entry_timeout = d;
		else if (IS("attr_timeout"))
			cli->opts.attr_timeout = d;
		else if (IS("negative_timeout"))
			cli->opts.negative_timeout = d;
		else if (IS("default_expire"))
			cli->opts.default_expire = d;
		else if (IS("coherence"))
			cli->opts.coherence = d;
		else
			cli->timeout = d;
		return 0;
	}
	if (IS("shards")) {
		if (dcfs_parse_size(val, &u) || u > 999)
			return bad_value(cli, arg);
		cli->shards = (int)u;
		return 0;
	}
#undef IS
	name = setting_name(arg, nlen);
	if (!name)
		return 1;
	if (!eq || cli->nsettings == MAX_SETTINGS)
		return bad_value(cli, arg);
	/* TEXT values point into the copy, which lives until exit. */
	cli->setting_text[cli->nsettings] = strdup(val);
	if (!cli->setting_text[cli->nsettings])
		return -1;
	if (dcfs_parse_setting(name, cli->setting_text[cli->nsettings],
			       strlen(val),
			       &cli->settings[cli->nsettings].value))
		return bad_value(cli, arg);
	cli->settings[cli->nsettings].name = name;
	cli->nsettings++;
	return 0;
}

/* mkdir -p with mode 0700 for what is created. */
static int make_dirs(const char *path)
{
	char *copy = strdup(path), *p;
	int err = 0;

	if (!copy)
		return ENOMEM;
	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
			err = errno;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	free(copy);
	return err;
}

static char *default_cache_dir(void)
{
	const char *base = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char buf[PATH_MAX];

	if (getuid() == 0)
		return strdup("/var/cache/dcachefs");
	if (base && *base)
		snprintf(buf, sizeof(buf), "%s/dcachefs", base);
	else if (home && *home)
		snprintf(buf, sizeof(buf), "%s/.cache/dcachefs", home);
	else
		return NULL;
	return strdup(buf);
}

/* The reasons a mount would fail, found before trying it. */
static int check_mountpoint(const char *mnt)
{
	struct stat st, pst;
	struct statfs sfs;
	char *copy, *parent;
	int busy;

	/* statfs always reaches a FUSE daemon (stat may be answered from
	 * cached attributes), so it tells a dead daemon's mount. */
	if (statfs(mnt, &sfs) < 0 || stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"dcachefs: %s is a stale mount (its daemon "
				"died); run: fusermount3 -u %s\n",
				mnt, mnt);
		else
			fprintf(stderr, "dcachefs: mount point %s: %s\n", mnt,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "dcachefs: mount point %s is not a directory\n",
			mnt);
		return -1;
	}
	copy = strdup(mnt);
	if (!copy)
		return -1;
	parent = dirname(copy);
	busy = stat(parent, &pst) == 0 && strcmp(mnt, "/") != 0 &&
	       (pst.st_dev != st.st_dev || pst.st_ino == st.st_ino);
	free(copy);
	if (busy) {
		fprintf(stderr,
			"dcachefs: mount point %s is busy: something is "
			"already mounted there\n",
			mnt);
		return -1;
	}
	return 0;
}

static int check_cache_dir(const char *dir, const struct cli *cli)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) == 0 && sfs.f_type == NFS_SUPER_MAGIC &&
	    !cli->allow_nfs) {
		fprintf(stderr,
			"dcachefs: cache directory %s is on NFS, where SQLite "
			"locking is unreliable (use -o allow_nfs to insist)\n",
			dir);
		return -1;
	}
	if (!cli->opts.ro && access(dir, W_OK) < 0) {
		fprintf(stderr,
			"dcachefs: cache directory %s: not writable: "
			"%s\n",
			dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int open_cache(struct dcfs *fs, const char *dir, const struct cli *cli)
{
	struct dc_options o;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;
	int rc;

	memset(&o, 0, sizeof(o));
	o.shards = cli->shards;
	o.timeout = cli->timeout;
	o.settings = cli->settings;
	o.nsettings = cli->nsettings;
	o.log = dcfs_dc_log;
	rc = dc_cache_open(dir, &o, &fs->cache);
	if (rc) {
		fprintf(stderr, "dcachefs: cannot open cache %s: %s\n", dir,
			dc_strerror(rc));
		return -1;
	}
	fs->spool_limit = 32768;
	if (dc_cache_setting_get(fs->cache, "disk_min_file_size", &buf, &v) ==
		0 &&
	    v.type == DC_TYPE_INT && v.i >= 0)
		fs->spool_limit = (uint64_t)v.i;
	dc_buf_release(&buf);
	return 0;
}

static int add_mount_opt(struct fuse_args *args, const char *name,
			 const char *value)
{
	char *opt = NULL, *kv;
	int rc;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -1;
	rc = fuse_opt_add_opt_escaped(&opt, kv);
	if (!rc)
		rc = fuse_opt_add_arg(args, "-o");
	if (!rc)
		rc = fuse_opt_add_arg(args, opt);
	free(kv);
	free(opt);
	return rc;
}

static void free_fs(struct dcfs *fs)
{
	dc_cache_close(fs->cache);
	dcfs_itable_free(fs->itable);
	dcfs_xdirs_free(fs->xdirs);
	dcfs_ctl_free(fs->ctl);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts copts;
	struct fuse_loop_config *cfg;
	struct fuse_session *se = NULL;
	struct dcfs fs;
	struct cli cli;
	char *mnt = NULL, *dir = NULL, *real = NULL;
	int ret = 1, mounted = 0, handlers = 0, rc;
	mode_t um;
	size_t i;

	memset(&fs, 0, sizeof(fs));
	memset(&cli, 0, sizeof(cli));
	memset(&copts, 0, sizeof(copts));
	um = umask(0);
	umask(um);
	/* Kernel cache timeouts: NaN until given; see below. */
	cli.opts.entry_timeout = NAN;
	cli.opts.attr_timeout = NAN;
	cli.opts.negative_timeout = NAN;
	cli.opts.coherence = 1.0;
	cli.opts.default_expire = DC_NO_EXPIRE;
	cli.opts.uid = getuid();
	cli.opts.gid = getgid();
	cli.opts.umask = um;

	if (fuse_opt_parse(&args, &cli, NULL, opt_proc) != 0) {
		if (!cli.bad)
			fprintf(stderr, "dcachefs: cannot parse options\n");
		goto out;
	}
	/* The mount point is ours to check (libfuse's message for a stale
	 * mount is "bad mount point"), so libfuse parses without it. */
	if (fuse_parse_cmdline(&args, &copts) != 0)
		goto out;
	if (copts.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (copts.show_version) {
		printf("dcachefs %s\nlibfuse %s\n%s\n", DCFS_VERSION,
		       fuse_pkgversion(), dc_version());
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (cli.npos == 0) {
		fprintf(stderr, "dcachefs: no mount point (try -h)\n");
		goto out;
	}
	if (check_mountpoint(cli.pos[cli.npos - 1]))
		goto out;
	mnt = realpath(cli.pos[cli.npos - 1], NULL);
	if (!mnt) {
		fprintf(stderr, "dcachefs: mount point %s: %s\n",
			cli.pos[cli.npos - 1], strerror(errno));
		goto out;
	}
	dcfs_verbose = copts.debug;
	/* The coherence thread invalidates what others change within
	 * opts.coherence, so names and attributes may be cached long;
	 * "no such file" is not tracked and is cached only that long. */
	if (cli.opts.coherence == 0)
		cli.strict = 1;
	if (cli.strict)
		cli.opts.entry_timeout = cli.opts.attr_timeout =
		    cli.opts.negative_timeout = cli.opts.coherence = 0;
	if (isnan(cli.opts.entry_timeout))
		cli.opts.entry_timeout = 60;
	if (isnan(cli.opts.attr_timeout))
		cli.opts.attr_timeout = 60;
	if (isnan(cli.opts.negative_timeout))
		cli.opts.negative_timeout = cli.opts.coherence;
	fs.opts = cli.opts;
	fs.opts.strict = cli.strict;

	dir = cli.npos == 2 ? strdup(cli.pos[0]) : default_cache_dir();
	if (!dir) {
		fprintf(stderr, "dcachefs: no cache directory: give CACHEDIR "
				"or set HOME\n");
		goto out;
	}
	rc = make_dirs(dir);
	if (rc) {
		fprintf(stderr,
			"dcachefs: cannot create cache directory %s: "
			"%s\n",
			dir, strerror(rc));
		goto out;
	}
	/* Absolute: the daemon changes to / when it goes to the
	 * background. */
	real = realpath(dir, NULL);
	if (!real) {
		fprintf(stderr, "dcachefs: cache directory %s: %s\n", dir,
			strerror(errno));
		goto out;
	}
	if (check_cache_dir(real, &cli) || open_cache(&fs, real, &cli))
		goto out;
	if (cli.log_file) {
		int fd =
		    open(cli.log_file, O_WRONLY | O_APPEND | O_CREAT, 0640);

		if (fd < 0) {
			fprintf(stderr, "dcachefs: log file %s: %s\n",
				cli.log_file, strerror(errno));
			goto out;
		}
		close(fd);
	}
	if (dcfs_itable_new(&fs.itable) || dcfs_xdirs_new(&fs.xdirs) ||
	    dcfs_ctl_new(&fs.ctl)) {
		fprintf(stderr, "dcachefs: out of memory\n");
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &fs.mount_time);

	if ((!cli.has_fsname && add_mount_opt(&args, "fsname", real)) ||
	    (!cli.has_subtype && add_mount_opt(&args, "subtype", "dcachefs")))
		goto out;
	se = fuse_session_new(&args, &dcfs_ops, sizeof(dcfs_ops), &fs);
	if (!se)
		goto out; /* libfuse said why */
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = 1;
	if (dcfs_hup_reopens_log() != 0)
		goto out;
	if (fuse_session_mount(se, mnt) != 0) {
		fprintf(stderr, "dcachefs: cannot mount on %s\n", mnt);
		goto out;
	}
	mounted = 1;
	/* The parent exits 0 here: the mount is live. */
	if (fuse_daemonize(copts.foreground) != 0)
		goto out;
	/* From here on stderr is /dev/null in the background. */
	if (cli.log_file)
		dcfs_log_open(DCFS_LOG_FILE, cli.log_file);
	else if (!copts.foreground)
		dcfs_log_open(DCFS_LOG_SYSLOG, NULL);
	dcfs_log(FUSE_LOG_NOTICE, "mounted %s on %s", real, mnt);
	rc = dcfs_coh_start(&fs, se, mnt);
	if (rc) {
		dcfs_log(FUSE_LOG_ERR, "cannot start the coherence thread: %s",
			 strerror(rc));
		goto out;
	}
	dcfs_notify("READY=1");

	if (copts.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out;
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)copts.clone_fd);
		fuse_loop_cfg_set_max_threads(cfg, copts.max_threads);
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	/* A signal (SIGTERM, SIGINT) is a clean stop; SIGHUP only reopens
	 * the log now. */
	ret = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
	dcfs_notify("STOPPING=1");
	dcfs_log(FUSE_LOG_NOTICE, "unmounting %s", mnt);
out:
	dcfs_coh_stop(&fs); /* before the session goes */
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	free_fs(&fs);
	fuse_opt_free_args(&args);
	free(copts.mountpoint);
	free(mnt);
	free(dir);
	free(real);
	for (i = 0; i < (size_t)cli.npos; i++)
		free(cli.pos[i]);
	for (i = 0; i < MAX_SETTINGS; i++)
		free(cli.setting_text[i]);
	free(cli.log_file);
	return ret;
}
