/* errno.c - the one mapping from libdcache return codes to errno, and logging
 * SPDX-License-Identifier: MIT
 */
#include "dcfs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int dcfs_errno(int rc)
{
	int err;

	switch (rc) {
	case 0:
		err = 0;
		break;
	case DC_NOTFOUND:
		err = ENOENT;
		break;
	case DC_TIMEOUT:
		/* The database stayed locked: the caller may try again. */
		err = EAGAIN;
		break;
	case DC_INVAL:
	case DC_TYPE:
	case DC_LAYOUT:
		err = EINVAL;
		break;
	case DC_EXISTS:
		err = EEXIST;
		break;
	case DC_OVERFLOW:
		err = EOVERFLOW;
		break;
	case DC_CORRUPT:
	case DC_UNSAFE:
	case DC_SQLITE:
		err = EIO;
		break;
	default:
		/* Positive: an errno passed through.  Small negative: a
		 * negated errno (dc_cache_mkstemp).  Anything else is a code
		 * this file does not know yet. */
		if (rc > 0)
			err = rc;
		else if (rc > -4096)
			err = -rc;
		else
			err = EIO;
		break;
	}
	return err;
}

int dcfs_verbose;

void dcfs_log(enum fuse_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	/* libfuse's default logger prints every level. */
	if (level > FUSE_LOG_NOTICE && !dcfs_verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fuse_log(level, "dcachefs: %s\n", msg);
}

void dcfs_dc_log(void *arg, enum dc_log_level level, const char *msg)
{
	enum fuse_log_level l;

	(void)arg;
	switch (level) {
	case DC_LOG_ERROR:
		l = FUSE_LOG_ERR;
		break;
	case DC_LOG_WARNING:
		l = FUSE_LOG_WARNING;
		break;
	case DC_LOG_INFO:
		l = FUSE_LOG_INFO;
		break;
	default:
		l = FUSE_LOG_DEBUG;
		break;
	}
	dcfs_log(l, "libdcache: %s", msg);
}
