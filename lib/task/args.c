/*
 * lib/task/args.c - split aeth-submit's -args string into words the way
 * a POSIX shell splits a simple command's words, without any expansion:
 * blanks separate words; '...' keeps everything literally; "..." keeps
 * everything except that \" \\ \$ \` and \<newline> are escapes; outside
 * quotes a backslash takes the next character literally and
 * \<newline> joins lines. Adjacent quoted and unquoted parts form one
 * word (a"b c"d is one word), and '' or "" is an empty word. $, *, ~ and
 * friends are plain characters: nothing is expanded or globbed.
 */
#include <stdlib.h>
#include <string.h>

#include "aetherium/task.h"
#include "internal.h"

/* Far beyond what a command line needs; keeps hostile input bounded. */
#define ARGS_MAX_INPUT (1024 * 1024)
#define ARGS_MAX_WORDS 4096

typedef struct {
	char **words;
	size_t n;
	size_t cap;
} word_list;

static int push_word(word_list *l, aeth__buf *w)
{
	char *s;

	if (l->n + 2 > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **p = realloc(l->words, cap * sizeof(*p));

		if (!p)
			return aeth__error_oom();
		l->words = p;
		l->cap = cap;
	}
	if (l->n >= ARGS_MAX_WORDS)
		return aeth__error_set(AETH_ETOOBIG,
				       "-args: more than %d words", ARGS_MAX_WORDS);
	s = w->data ? aeth__buf_detach(w, NULL) : strdup("");
	if (!s)
		return aeth__error_oom();
	l->words[l->n++] = s;
	l->words[l->n] = NULL;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* In double quotes a backslash escapes only these (POSIX 2.2.3). */
static bool dq_escapable(char c)
{
	return c == '"' || c == '\\' || c == '$' || c == '`' || c == '\n';
}

static int split(const char *s, word_list *l)
{
	aeth__buf w = AETH__BUF_INIT;
	bool in_word = false;
	int rc = 0;

	for (size_t i = 0; s[i] && rc == 0;) {
		char c = s[i];

		if (is_blank(c)) {
			if (in_word)
				rc = push_word(l, &w);
			in_word = false;
			i++;
		} else if (c == '\'') {
			const char *end = strchr(s + i + 1, '\'');

			if (!end) {
				rc = aeth__error_set(AETH_EINVALID,
					"-args: unterminated single quote at column %zu: "
					"close it with ' (or escape it as \\')", i + 1);
				break;
			}
			in_word = true;
			rc = aeth__buf_append(&w, s + i + 1, (size_t)(end - (s + i + 1)));
			if (!w.data && rc == 0)
				rc = aeth__buf_append(&w, "", 0);
			i = (size_t)(end - s) + 1;
		} else if (c == '"') {
			size_t j = i + 1;

			in_word = true;
			if (!w.data)
				rc = aeth__buf_append(&w, "", 0);
			while (rc == 0 && s[j] && s[j] != '"') {
				if (s[j] == '\\' && s[j + 1] && dq_escapable(s[j + 1])) {
					if (s[j + 1] != '\n')
						rc = aeth__buf_append(&w, s + j + 1, 1);
					j += 2;
				} else {
					rc = aeth__buf_append(&w, s + j, 1);
					j++;
				}
			}
			if (rc == 0 && !s[j]) {
				rc = aeth__error_set(AETH_EINVALID,
					"-args: unterminated double quote at column %zu: "
					"close it with \" (or escape it as \\\")", i + 1);
				break;
			}
			i = j + 1;
		} else if (c == '\\') {
			if (!s[i + 1]) {
				rc = aeth__error_set(AETH_EINVALID,
					"-args: a lone backslash ends the string: "
					"write \\\\ for a literal backslash");
				break;
			}
			if (s[i + 1] != '\n') {
				in_word = true;
				rc = aeth__buf_append(&w, s + i + 1, 1);
			}
			i += 2;
		} else {
			in_word = true;
			rc = aeth__buf_append(&w, s + i, 1);
			i++;
		}
	}
	if (rc == 0 && in_word)
		rc = push_word(l, &w);
	aeth__buf_free(&w);
	return rc;
}

int aeth_args_split(char ***argv_out, size_t *argc_out, const char *line)
{
	word_list l = {NULL, 0, 0};
	int rc;

	if (!argv_out)
		return aeth__error_set(AETH_EINVALID, "aeth_args_split: argv_out is NULL");
	*argv_out = NULL;
	if (argc_out)
		*argc_out = 0;
	if (!line)
		line = "";
	if (strlen(line) > ARGS_MAX_INPUT)
		return aeth__error_set(AETH_ETOOBIG, "-args: longer than %d bytes",
				       ARGS_MAX_INPUT);
	rc = split(line, &l);
	if (rc == 0 && !l.words) {
		l.words = calloc(1, sizeof(char *));
		if (!l.words)
			rc = aeth__error_oom();
	}
	if (rc != 0) {
		if (l.words) {
			l.words[l.n] = NULL;
			aeth_strarray_free(l.words);
		}
		return rc;
	}
	*argv_out = l.words;
	if (argc_out)
		*argc_out = l.n;
	return 0;
}
