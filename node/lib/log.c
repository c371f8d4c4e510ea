/* See log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

enum pvlog_level pvlog_max_level = PVLOG_INFO;
const char *pvlog_prog = "pvha";

void pvlog_write(enum pvlog_level lvl, const char *func, int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (lvl > pvlog_max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, "%s: %s: %s: %s\n", pvlog_prog, func, msg, strerror(err < 0 ? -err : err));
	else
		fprintf(stderr, "%s: %s: %s\n", pvlog_prog, func, msg);
}
