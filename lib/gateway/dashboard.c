/*
 * lib/gateway/dashboard.c - the web dashboard's files (docs/dashboard.md):
 * one page, one script, one style sheet, compiled into the library, served
 * without a key under /dashboard/ with a strict Content-Security-Policy
 * (no inline script or style, nothing from another origin), so that a
 * value the API returns can never run as code in the page even if the
 * page's own escaping missed it.
 */
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"

#define PREFIX "/dashboard/"

static const char csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; "
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

static const aeth__gw_asset *asset(const char *name)
{
	for (size_t i = 0; i < aeth__gw_assets_count; i++)
		if (!strcmp(aeth__gw_assets[i].name, name))
			return &aeth__gw_assets[i];
	return NULL;
}

static void serve(const aeth__http_request *req, aeth__http_response *res)
{
	const aeth__gw_asset *a = NULL;
	const char *inm;

	if (!strcmp(req->path, "/") || !strcmp(req->path, "/dashboard")) {
		/* one place for the page, so relative links work */
		aeth__http_respond(res, 302, "text/plain; charset=utf-8",
				   "see /dashboard/\n", 16);
		aeth__http_respond_header(res, "Location", PREFIX);
		return;
	}
	if (!strncmp(req->path, PREFIX, strlen(PREFIX)))
		a = asset(req->path[strlen(PREFIX)] ? req->path + strlen(PREFIX)
						    : "index.html");
	if (!a) {
		aeth__http_respond_error(res, 404, "not_found", "nothing at %s (the "
					 "dashboard is at /dashboard/, the API "
					 "under /v1/)", req->path);
		return;
	}
	inm = aeth__http_header(req, "If-None-Match");
	if (inm && !strcmp(inm, a->etag))
		aeth__http_respond(res, 304, NULL, "", 0);
	else
		aeth__http_respond(res, 200, a->content_type, a->data, a->len);
	/* revalidate every time (a new build changes the ETag): cheap, and
	 * the page never runs an old script against a new API */
	aeth__http_respond_header(res, "Cache-Control", "no-cache");
	aeth__http_respond_header(res, "ETag", a->etag);
	aeth__http_respond_header(res, "Content-Security-Policy", csp);
	aeth__http_respond_header(res, "X-Content-Type-Options", "nosniff");
	aeth__http_respond_header(res, "Referrer-Policy", "no-referrer");
	aeth__http_respond_header(res, "X-Frame-Options", "DENY");
}

void aeth__gw_dashboard(const aeth__http_request *req,
			aeth__http_response *res, void *gw)
{
	double t0 = aeth__gw_clock();

	(void)gw;
	serve(req, res);
	/* one bounded route label for all of the dashboard's files; what
	 * only reached here because "/" takes every path is "unmatched" */
	aeth__gw_metrics_request(req->method, !strcmp(req->path, "/") ||
				 !strcmp(req->path, "/dashboard") ||
				 !strncmp(req->path, PREFIX, strlen(PREFIX))
				 ? PREFIX : "unmatched", res, t0);
}
