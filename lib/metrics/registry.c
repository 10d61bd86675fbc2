/*
 * lib/metrics/registry.c - the series of each metric (a small fixed
 * array per metric, each behind its metric's mutex), the collectors, and
 * the Prometheus text rendering.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "metrics/metrics.h"

#define LABEL_MAX 64

typedef struct {
	bool used;
	char label[AETH__METRIC_MAX_LABELS][LABEL_MAX];
	double value; /* counter, gauge; histogram: sum */
	uint64_t count;
	uint64_t bucket[AETH__METRIC_MAX_BUCKETS]; /* not cumulative */
} series;

typedef struct {
	pthread_mutex_t mu;
	size_t n;
	series s[AETH__METRIC_MAX_SERIES];
} family;

static family families[AETH__M_COUNT];
static pthread_once_t families_once = PTHREAD_ONCE_INIT;

static void families_init(void)
{
	for (size_t i = 0; i < AETH__M_COUNT; i++)
		pthread_mutex_init(&families[i].mu, NULL);
}

static size_t n_labels(const aeth__metric_def *d)
{
	size_t n = 0;

	while (n < AETH__METRIC_MAX_LABELS && d->labels[n])
		n++;
	return n;
}

static bool same(const series *s, const char *const *v, size_t nl)
{
	for (size_t i = 0; i < nl; i++)
		if (strncmp(s->label[i], v[i] ? v[i] : "", LABEL_MAX - 1) != 0)
			return false;
	return true;
}

/* Under f->mu: the series of these label values; the "other" series
 * once the metric has AETH__METRIC_MAX_SERIES - 1 others. */
static series *find(family *f, const aeth__metric_def *d,
		    const char *const *lv)
{
	static const char *const other[AETH__METRIC_MAX_LABELS] = {
		"other", "other", "other"};
	const char *const *v = lv;
	size_t nl = n_labels(d);
	series *s;

	for (size_t i = 0; i < f->n; i++)
		if (same(&f->s[i], v, nl))
			return &f->s[i];
	if (f->n >= AETH__METRIC_MAX_SERIES - 1) {
		for (size_t i = 0; i < f->n; i++)
			if (same(&f->s[i], other, nl))
				return &f->s[i];
		v = other;
		if (f->n >= AETH__METRIC_MAX_SERIES)
			return &f->s[f->n - 1];
	}
	s = &f->s[f->n++];
	memset(s, 0, sizeof(*s));
	s->used = true;
	for (size_t i = 0; i < nl; i++)
		snprintf(s->label[i], LABEL_MAX, "%s", v[i] ? v[i] : "");
	return s;
}

static void update(aeth__metric_id id, int op, double v,
		   const char *const *lv)
{
	const aeth__metric_def *d;
	family *f;
	series *s;

	if ((unsigned int)id >= AETH__M_COUNT || isnan(v))
		return;
	pthread_once(&families_once, families_init);
	d = &aeth__metric_defs[id];
	f = &families[id];
	pthread_mutex_lock(&f->mu);
	s = find(f, d, lv);
	if (op == 0) {
		s->value += v;
	} else if (op == 1) {
		s->value = v;
	} else {
		size_t b = 0;
		while (b < d->n_buckets && v > d->buckets[b])
			b++;
		if (b < d->n_buckets)
			s->bucket[b]++;
		s->value += v;
		s->count++;
	}
	pthread_mutex_unlock(&f->mu);
}

void aeth__metric_add3(aeth__metric_id id, double v, const char *l1,
		       const char *l2, const char *l3)
{
	const char *lv[AETH__METRIC_MAX_LABELS] = {l1, l2, l3};

	/* a counter only goes up */
	if ((unsigned int)id < AETH__M_COUNT &&
	    aeth__metric_defs[id].type == AETH__COUNTER && !(v >= 0))
		return;
	update(id, 0, v, lv);
}

void aeth__metric_add(aeth__metric_id id, double v, const char *l1,
		      const char *l2)
{
	aeth__metric_add3(id, v, l1, l2, NULL);
}

void aeth__metric_set(aeth__metric_id id, double v, const char *l1,
		      const char *l2)
{
	const char *lv[AETH__METRIC_MAX_LABELS] = {l1, l2, NULL};

	update(id, 1, v, lv);
}

void aeth__metric_observe(aeth__metric_id id, double v, const char *l1,
			  const char *l2)
{
	const char *lv[AETH__METRIC_MAX_LABELS] = {l1, l2, NULL};

	update(id, 2, v, lv);
}

double aeth__metric_value(aeth__metric_id id, const char *l1, const char *l2)
{
	return aeth__metric_value3(id, l1, l2, NULL);
}

double aeth__metric_value3(aeth__metric_id id, const char *l1, const char *l2,
			   const char *l3)
{
	const char *v[AETH__METRIC_MAX_LABELS] = {l1, l2, l3};
	family *f;
	double r = 0;

	if ((unsigned int)id >= AETH__M_COUNT)
		return 0;
	pthread_once(&families_once, families_init);
	f = &families[id];
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n; i++)
		if (same(&f->s[i], v, n_labels(&aeth__metric_defs[id])))
			r = aeth__metric_defs[id].type == AETH__HISTOGRAM
				    ? (double)f->s[i].count : f->s[i].value;
	pthread_mutex_unlock(&f->mu);
	return r;
}

/* --- collectors --------------------------------------------------------- */

#define MAX_COLLECTORS 16

static pthread_mutex_t collect_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	aeth__metrics_collect_fn fn;
	void *userdata;
} collectors[MAX_COLLECTORS];

int aeth__metrics_collector_add(aeth__metrics_collect_fn fn, void *userdata)
{
	int rc = aeth__error_set(AETH_ETOOBIG, "more than %d metrics collectors "
				 "in one process", MAX_COLLECTORS);

	pthread_mutex_lock(&collect_mu);
	for (size_t i = 0; i < MAX_COLLECTORS; i++)
		if (!collectors[i].fn) {
			collectors[i].fn = fn;
			collectors[i].userdata = userdata;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&collect_mu);
	return rc;
}

void aeth__metrics_collector_remove(aeth__metrics_collect_fn fn,
				    void *userdata)
{
	/* collect_mu is held while collectors run: once this returns, `fn`
	 * is not running and will not run with `userdata` again */
	pthread_mutex_lock(&collect_mu);
	for (size_t i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn == fn && collectors[i].userdata == userdata)
			collectors[i].fn = NULL;
	pthread_mutex_unlock(&collect_mu);
}

/* Under collect_mu, held through the render that follows: two scrapes
 * at once must not zero each other's sums. */
static void collect(void)
{
	for (size_t id = 0; id < AETH__M_COUNT; id++) {
		family *f = &families[id];
		if (!aeth__metric_defs[id].collected)
			continue;
		pthread_mutex_lock(&f->mu);
		for (size_t i = 0; i < f->n; i++)
			f->s[i].value = 0;
		pthread_mutex_unlock(&f->mu);
	}
	for (size_t i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn)
			collectors[i].fn(collectors[i].userdata);
}

/* --- rendering ---------------------------------------------------------- */

static void put_number(aeth__buf *b, double v)
{
	if (isinf(v))
		aeth__buf_printf(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		aeth__buf_printf(b, "%.0f", v);
	else
		aeth__buf_printf(b, "%.17g", v);
}

/* A label value with \, " and newline escaped (the text format's rule). */
static void put_label_value(aeth__buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			aeth__buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			aeth__buf_printf(b, "\\n");
		else
			aeth__buf_append(b, v, 1);
	}
}

static void put_labels(aeth__buf *b, const aeth__metric_def *d,
		       const series *s, const char *le)
{
	size_t nl = n_labels(d);

	if (nl == 0 && !le)
		return;
	aeth__buf_printf(b, "{");
	for (size_t i = 0; i < nl; i++) {
		aeth__buf_printf(b, "%s%s=\"", i ? "," : "", d->labels[i]);
		put_label_value(b, s->label[i]);
		aeth__buf_printf(b, "\"");
	}
	if (le)
		aeth__buf_printf(b, "%sle=\"%s\"", nl ? "," : "", le);
	aeth__buf_printf(b, "}");
}

static void render_series(aeth__buf *b, const aeth__metric_def *d,
			  const series *s)
{
	char le[32];
	uint64_t cum = 0;

	if (d->type != AETH__HISTOGRAM) {
		aeth__buf_printf(b, "%s", d->name);
		put_labels(b, d, s, NULL);
		aeth__buf_printf(b, " ");
		put_number(b, s->value);
		aeth__buf_printf(b, "\n");
		return;
	}
	for (size_t i = 0; i < d->n_buckets; i++) {
		cum += s->bucket[i];
		snprintf(le, sizeof(le), "%g", d->buckets[i]);
		aeth__buf_printf(b, "%s_bucket", d->name);
		put_labels(b, d, s, le);
		aeth__buf_printf(b, " %llu\n", (unsigned long long)cum);
	}
	aeth__buf_printf(b, "%s_bucket", d->name);
	put_labels(b, d, s, "+Inf");
	aeth__buf_printf(b, " %llu\n%s_sum", (unsigned long long)s->count,
			 d->name);
	put_labels(b, d, s, NULL);
	aeth__buf_printf(b, " ");
	put_number(b, s->value);
	aeth__buf_printf(b, "\n%s_count", d->name);
	put_labels(b, d, s, NULL);
	aeth__buf_printf(b, " %llu\n", (unsigned long long)s->count);
}

int aeth__metrics_render(char **out, size_t *len, aeth__metric_part part)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	aeth__buf b = AETH__BUF_INIT;

	*out = NULL;
	if (len)
		*len = 0;
	pthread_once(&families_once, families_init);
	pthread_mutex_lock(&collect_mu);
	collect();
	for (size_t id = 0; id < AETH__M_COUNT; id++) {
		const aeth__metric_def *d = &aeth__metric_defs[id];
		family *f = &families[id];
		series empty;

		if (part != AETH__PART_ALL && d->part != part)
			continue;
		aeth__buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", d->name,
				 d->help, d->name, types[d->type]);
		pthread_mutex_lock(&f->mu);
		for (size_t i = 0; i < f->n; i++)
			render_series(&b, d, &f->s[i]);
		/* a metric without labels has its one series from the start,
		 * so that a rate() sees it go from 0 */
		if (f->n == 0 && n_labels(d) == 0) {
			memset(&empty, 0, sizeof(empty));
			render_series(&b, d, &empty);
		}
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_unlock(&collect_mu);
	if (!b.data)
		return aeth__error_oom();
	*out = aeth__buf_detach(&b, len);
	return *out ? 0 : aeth__error_oom();
}
