/*
 * lib/metrics/serve.c - GET /metrics as a lib/http handler, for every
 * program that serves its metrics (a worker's metrics.listen, the
 * gateway's). Only with HTTP (AETH_HAVE_HTTP).
 */
#include <stdint.h>

#include "http/http.h"
#include "metrics/metrics.h"

void aeth__metrics_serve(const aeth__http_request *req,
			 aeth__http_response *res, void *part)
{
	char *text = NULL;
	size_t len = 0;

	(void)req;
	if (aeth__metrics_render(&text, &len,
				 (aeth__metric_part)(intptr_t)part) != 0) {
		aeth__http_respond_error(res, 500, "internal", "%s",
					 aeth_error_last());
		return;
	}
	aeth__http_respond_take(res, 200, AETH__METRICS_CONTENT_TYPE, text, len);
}
