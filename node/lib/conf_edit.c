/* See conf_edit.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_edit.h"

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Whether line sets key (commented: "#key = ..."); its value into val. */
static bool line_is_key(const char *line, const char *key, bool commented, char *val, size_t vallen)
{
	const char *s = skip_blanks(line);
	if (commented) {
		if (*s != '#')
			return false;
		s = skip_blanks(s + 1);
	}
	size_t k = strlen(key);
	if (strncmp(s, key, k))
		return false;
	s = skip_blanks(s + k);
	if (*s != '=')
		return false;
	s = skip_blanks(s + 1);
	size_t n = strcspn(s, "#");
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (val && vallen)
		snprintf(val, vallen, "%.*s", (int)n, s);
	return true;
}

void conf_edit_free(struct conf_edit *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->line[i]);
	f->n = 0;
}

int conf_edit_parse(struct conf_edit *f, const char *text)
{
	const char *s = text;
	while (*s) {
		size_t len = strcspn(s, "\n");
		if (f->n == CONF_EDIT_LINES_MAX || len + 1 > CONF_EDIT_LINE_MAX) {
			conf_edit_free(f);
			return -E2BIG;
		}
		if (!(f->line[f->n] = strndup(s, len))) {
			conf_edit_free(f);
			return -ENOMEM;
		}
		f->n++;
		s += len;
		if (*s == '\n')
			s++;
	}
	return 0;
}

int conf_edit_load(struct conf_edit *f, const char *path)
{
	char buf[CONF_EDIT_LINES_MAX * 64];
	FILE *in = fopen(path, "r");
	memset(f, 0, sizeof(*f));
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	size_t len = fread(buf, 1, sizeof(buf) - 1, in);
	int err = ferror(in) ? -EIO : fgetc(in) != EOF ? -E2BIG : 0; /* larger than any pvhad.conf */
	fclose(in);
	if (err)
		return err;
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EINVAL; /* a NUL byte: not a text file */
	f->exists = true;
	return conf_edit_parse(f, buf);
}

bool conf_edit_get(const struct conf_edit *f, const char *key, char *val, size_t vallen)
{
	for (size_t i = 0; i < f->n; i++)
		if (line_is_key(f->line[i], key, false, val, vallen))
			return true;
	return false;
}

int conf_edit_set(struct conf_edit *f, const char *key, const char *val)
{
	char have[CONF_EDIT_LINE_MAX], line[CONF_EDIT_LINE_MAX];
	size_t vlen = strlen(val);
	if (!key[0] || strspn(key, "abcdefghijklmnopqrstuvwxyz_") != strlen(key) || !vlen ||
	    strpbrk(val, "#\n\r") || val[0] == ' ' || val[0] == '\t' || val[vlen - 1] == ' ' ||
	    val[vlen - 1] == '\t')
		return -EINVAL;
	if (conf_edit_get(f, key, have, sizeof(have)))
		return strcmp(have, val) ? -EEXIST : 0;
	if ((size_t)snprintf(line, sizeof(line), "%s = %s", key, val) + 1 > sizeof(line) - 1)
		return -E2BIG;
	char *dup = strdup(line);
	if (!dup)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		if (line_is_key(f->line[i], key, true, NULL, 0)) {
			free(f->line[i]);
			f->line[i] = dup;
			return 0;
		}
	}
	if (f->n == CONF_EDIT_LINES_MAX) {
		free(dup);
		return -E2BIG;
	}
	f->line[f->n++] = dup;
	return 0;
}

char *conf_edit_text(const struct conf_edit *f, size_t *len)
{
	size_t total = 1;
	for (size_t i = 0; i < f->n; i++)
		total += strlen(f->line[i]) + 1;
	char *out = malloc(total), *p = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < f->n; i++) {
		size_t l = strlen(f->line[i]);
		memcpy(p, f->line[i], l);
		p[l] = '\n';
		p += l + 1;
	}
	*p = '\0';
	*len = (size_t)(p - out);
	return out;
}
