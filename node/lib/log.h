/*
 * Logging for pvha's programs (the libraries do not log: they return -errno and
 * reasons). One line per call on stderr, "PROG: func: message"; pvlog_err
 * appends strerror(-err). Not thread-safe beyond what stdio gives.
 */
#ifndef PVHA_LOG_H
#define PVHA_LOG_H

enum pvlog_level { PVLOG_ERROR = 0, PVLOG_WARN, PVLOG_INFO, PVLOG_DEBUG };

extern enum pvlog_level pvlog_max_level;
extern const char *pvlog_prog;

void pvlog_write(enum pvlog_level lvl, const char *func, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define pvlog_err(err, ...) pvlog_write(PVLOG_ERROR, __func__, (err), __VA_ARGS__)
#define pvlog_warn(...) pvlog_write(PVLOG_WARN, __func__, 0, __VA_ARGS__)
#define pvlog_info(...) pvlog_write(PVLOG_INFO, __func__, 0, __VA_ARGS__)
#define pvlog_debug(...) pvlog_write(PVLOG_DEBUG, __func__, 0, __VA_ARGS__)

#endif /* PVHA_LOG_H */
