/*
 * lib/vm/firecracker_api.c - Firecracker's REST API over its Unix socket,
 * with libcurl (CURLOPT_UNIX_SOCKET_PATH) and cJSON for the bodies.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "internal.h"
#include "vm/backend.h"
#include "vm/firecracker_api.h"

/* Firecracker's answers are small JSON documents; more is a broken peer. */
#define FC_MAX_RESPONSE (256 * 1024)

struct aeth__fc_api {
	CURL *curl;
	char *sock_path;
	unsigned int timeout_ms;
	long last_status;
	char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

/* curl_global_init is not thread-safe in every libcurl build: once only. */
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int aeth__fc_api_open(aeth__fc_api **out, const char *sock_path,
		      unsigned int timeout_ms)
{
	aeth__fc_api *api;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return aeth__error_set(AETH_ERROR, "libcurl initialisation failed: %s",
				       curl_easy_strerror(curl_init_rc));
	api = calloc(1, sizeof(*api));
	if (!api)
		return aeth__error_oom();
	api->sock_path = aeth__strdup(sock_path);
	api->curl = curl_easy_init();
	if (!api->sock_path || !api->curl) {
		aeth__fc_api_free(api);
		return aeth__error_oom();
	}
	api->timeout_ms = timeout_ms ? timeout_ms : 5000;
	*out = api;
	return 0;
}

void aeth__fc_api_free(aeth__fc_api *api)
{
	if (!api)
		return;
	if (api->curl)
		curl_easy_cleanup(api->curl);
	free(api->sock_path);
	free(api);
}

long aeth__fc_api_last_status(const aeth__fc_api *api)
{
	return api->last_status;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	aeth__buf *b = userdata;
	size_t n = size * nmemb;

	if (aeth__buf_append(b, ptr, n) != 0 || b->truncated)
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return n;
}

/* The fault_message of an error body, or the body itself, for the error. */
static char *fault_text(const char *body)
{
	cJSON *doc = cJSON_Parse(body ? body : "");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "fault_message");
	char *text;

	if (cJSON_IsString(msg))
		text = aeth__strdup(msg->valuestring);
	else if (body && *body)
		text = aeth__sprintf("(no fault_message) %.300s", body);
	else
		text = aeth__strdup("(empty answer)");
	cJSON_Delete(doc);
	return text;
}

static int curl_failure(aeth__fc_api *api, const char *method,
			const char *path, CURLcode rc)
{
	const char *detail = api->curl_err[0] ? api->curl_err : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return aeth__error_set(AETH_EUNAVAILABLE,
				       "firecracker API at %s: %s %s: cannot connect (%s): is the firecracker process running?",
				       api->sock_path, method, path, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return aeth__error_set(AETH_ETIMEOUT,
				       "firecracker API at %s: %s %s: no answer within %u ms (%s)",
				       api->sock_path, method, path, api->timeout_ms, detail);
	case CURLE_WRITE_ERROR:
		return aeth__error_set(AETH_ETOOBIG,
				       "firecracker API at %s: %s %s: answer larger than %d bytes",
				       api->sock_path, method, path, FC_MAX_RESPONSE);
	default:
		return aeth__error_set(AETH_EPROTO, "firecracker API at %s: %s %s: %s",
				       api->sock_path, method, path, detail);
	}
}

int aeth__fc_sock_pin(const char *path, char via[32])
{
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		close(fd);
		return -ENOTSOCK;
	}
	snprintf(via, 32, "/proc/self/fd/%d", fd);
	return fd;
}

int aeth__fc_unix_connect(const char *path)
{
	char via[32];
	int pin = aeth__fc_sock_pin(path, via), fd;

	if (pin < 0)
		return pin;
	fd = aeth__vm_unix_connect(via);
	close(pin);
	return fd;
}

int aeth__fc_api_call(aeth__fc_api *api, const char *method,
		      const char *path, const char *body, char **response)
{
	char via[32];
	int pin;
	aeth__buf resp = AETH__BUF_INIT;
	struct curl_slist *hdrs = NULL, *h;
	char *url;
	CURLcode rc;
	int ret;

	api->last_status = 0;
	api->curl_err[0] = '\0';
	resp.limit = FC_MAX_RESPONSE;
	/* curl connects (or reuses its connection) through the pinned
	 * socket, never through a link swapped in for it. */
	if ((pin = aeth__fc_sock_pin(api->sock_path, via)) < 0)
		return aeth__error_set(AETH_EUNAVAILABLE,
				       "firecracker API at %s: %s %s: cannot connect (%s): is the firecracker process running?",
				       api->sock_path, method, path, strerror(-pin));
	url = aeth__sprintf("http://localhost%s", path);
	if (!url) {
		close(pin);
		return AETH_ENOMEM;
	}
	/* Reset keeps the open connection; options are set afresh each call. */
	curl_easy_reset(api->curl);
	h = curl_slist_append(NULL, "Accept: application/json");
	hdrs = h;
	if (hdrs && body) {
		h = curl_slist_append(hdrs, "Content-Type: application/json");
		/* No "Expect: 100-continue" round trip on a local socket. */
		if (h)
			h = curl_slist_append(hdrs, "Expect:");
	}
	if (!h) {
		curl_slist_free_all(hdrs);
		free(url);
		close(pin);
		return aeth__error_oom();
	}
	curl_easy_setopt(api->curl, CURLOPT_UNIX_SOCKET_PATH, via);
	curl_easy_setopt(api->curl, CURLOPT_URL, url);
	curl_easy_setopt(api->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(api->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(api->curl, CURLOPT_TIMEOUT_MS, (long)api->timeout_ms);
	curl_easy_setopt(api->curl, CURLOPT_ERRORBUFFER, api->curl_err);
	curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, &resp);
	if (body) {
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	aeth__debug("firecracker API %s: %s %s %s", api->sock_path, method, path,
		    body ? body : "");
	rc = curl_easy_perform(api->curl);
	close(pin);
	curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &api->last_status);
	curl_slist_free_all(hdrs);
	free(url);
	if (rc != CURLE_OK) {
		aeth__buf_free(&resp);
		return curl_failure(api, method, path, rc);
	}
	if (api->last_status >= 200 && api->last_status < 300) {
		if (response) {
			*response = resp.data ? aeth__buf_detach(&resp, NULL) : aeth__strdup("");
			if (!*response)
				ret = aeth__error_oom();
			else
				ret = 0;
		} else {
			ret = 0;
		}
		aeth__buf_free(&resp);
		return ret;
	}
	{
		char *fault = fault_text(resp.data);

		ret = aeth__error_set(api->last_status >= 400 && api->last_status < 500
					      ? AETH_EINVALID : AETH_EPROTO,
				      "firecracker API at %s: %s %s: %ld: %s", api->sock_path,
				      method, path, api->last_status,
				      fault ? fault : "(out of memory)");
		free(fault);
	}
	aeth__buf_free(&resp);
	return ret;
}

/* `method` a cJSON document (deleted here) to `path`. */
static int send_json(aeth__fc_api *api, const char *method, const char *path,
		     cJSON *doc)
{
	char *text;
	int ret;

	if (!doc)
		return aeth__error_oom();
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text)
		return aeth__error_oom();
	ret = aeth__fc_api_call(api, method, path, text, NULL);
	cJSON_free(text);
	return ret;
}

static int put_json(aeth__fc_api *api, const char *path, cJSON *doc)
{
	return send_json(api, "PUT", path, doc);
}

/* Add members, failing as a whole on the first allocation failure. */
static bool add_str(cJSON *o, const char *k, const char *v)
{
	return v == NULL || cJSON_AddStringToObject(o, k, v) != NULL;
}

static bool add_num(cJSON *o, const char *k, double v)
{
	return cJSON_AddNumberToObject(o, k, v) != NULL;
}

static bool add_bool(cJSON *o, const char *k, bool v)
{
	return cJSON_AddBoolToObject(o, k, v) != NULL;
}

static cJSON *done(cJSON *o, bool ok)
{
	if (ok)
		return o;
	cJSON_Delete(o);
	return NULL;
}

int aeth__fc_put_machine_config(aeth__fc_api *api, unsigned int vcpus,
				unsigned int mem_mib)
{
	cJSON *o = cJSON_CreateObject();

	return put_json(api, "/machine-config",
			done(o, o && add_num(o, "vcpu_count", vcpus) &&
					add_num(o, "mem_size_mib", mem_mib)));
}

int aeth__fc_put_boot_source(aeth__fc_api *api, const char *kernel_path,
			     const char *initrd_path, const char *boot_args)
{
	cJSON *o = cJSON_CreateObject();

	return put_json(api, "/boot-source",
			done(o, o && add_str(o, "kernel_image_path", kernel_path) &&
					add_str(o, "initrd_path", initrd_path) &&
					add_str(o, "boot_args", boot_args)));
}

int aeth__fc_put_drive(aeth__fc_api *api, const char *drive_id,
		       const char *path_on_host, bool is_root_device,
		       bool is_read_only)
{
	cJSON *o = cJSON_CreateObject();
	char *path = aeth__sprintf("/drives/%s", drive_id);
	int ret;

	if (!path) {
		cJSON_Delete(o);
		return AETH_ENOMEM;
	}
	ret = put_json(api, path,
		       done(o, o && add_str(o, "drive_id", drive_id) &&
				       add_str(o, "path_on_host", path_on_host) &&
				       add_bool(o, "is_root_device", is_root_device) &&
				       add_bool(o, "is_read_only", is_read_only)));
	free(path);
	return ret;
}

int aeth__fc_put_network(aeth__fc_api *api, const char *iface_id,
			 const char *host_dev_name)
{
	cJSON *o = cJSON_CreateObject();
	char *path = aeth__sprintf("/network-interfaces/%s", iface_id);
	int ret;

	if (!path) {
		cJSON_Delete(o);
		return AETH_ENOMEM;
	}
	ret = put_json(api, path,
		       done(o, o && add_str(o, "iface_id", iface_id) &&
				       add_str(o, "host_dev_name", host_dev_name)));
	free(path);
	return ret;
}

int aeth__fc_put_vsock(aeth__fc_api *api, unsigned int guest_cid,
		       const char *uds_path)
{
	cJSON *o = cJSON_CreateObject();

	return put_json(api, "/vsock",
			done(o, o && add_num(o, "guest_cid", guest_cid) &&
					add_str(o, "uds_path", uds_path)));
}

int aeth__fc_put_serial(aeth__fc_api *api, const char *serial_out_path,
			unsigned int bytes_per_s, unsigned int burst)
{
	cJSON *o = cJSON_CreateObject(), *rl = cJSON_CreateObject();
	bool ok = o && rl && add_str(o, "serial_out_path", serial_out_path) &&
		  add_num(rl, "size", bytes_per_s) && add_num(rl, "refill_time", 1000) &&
		  add_num(rl, "one_time_burst", burst);

	if (ok)
		cJSON_AddItemToObject(o, "rate_limiter", rl);
	else
		cJSON_Delete(rl);
	return put_json(api, "/serial", done(o, ok));
}

int aeth__fc_put_action(aeth__fc_api *api, const char *action)
{
	cJSON *o = cJSON_CreateObject();

	return put_json(api, "/actions",
			done(o, o && add_str(o, "action_type", action)));
}

int aeth__fc_patch_vm(aeth__fc_api *api, const char *state)
{
	cJSON *o = cJSON_CreateObject();

	return send_json(api, "PATCH", "/vm", done(o, o && add_str(o, "state", state)));
}

int aeth__fc_put_snapshot_create(aeth__fc_api *api, const char *snapshot_path,
				 const char *mem_file_path)
{
	cJSON *o = cJSON_CreateObject();

	return put_json(api, "/snapshot/create",
			done(o, o && add_str(o, "snapshot_type", "Full") &&
				     add_str(o, "snapshot_path", snapshot_path) &&
				     add_str(o, "mem_file_path", mem_file_path)));
}

int aeth__fc_put_snapshot_load(aeth__fc_api *api, const char *snapshot_path,
			       const char *mem_file_path, const char *uds_path)
{
	cJSON *o = cJSON_CreateObject(), *mem = cJSON_CreateObject();
	cJSON *vs = cJSON_CreateObject();
	bool ok = o && mem && vs && add_str(mem, "backend_type", "File") &&
		  add_str(mem, "backend_path", mem_file_path) &&
		  add_str(vs, "uds_path", uds_path) &&
		  add_str(o, "snapshot_path", snapshot_path) &&
		  add_bool(o, "resume_vm", true);

	if (ok) {
		cJSON_AddItemToObject(o, "mem_backend", mem);
		cJSON_AddItemToObject(o, "vsock_override", vs);
	} else {
		cJSON_Delete(mem);
		cJSON_Delete(vs);
	}
	return put_json(api, "/snapshot/load", done(o, ok));
}

int aeth__fc_get_instance(aeth__fc_api *api, char **id_out, char **state_out)
{
	char *text = NULL;
	cJSON *doc;
	const cJSON *id, *state;
	int ret;

	ret = aeth__fc_api_call(api, "GET", "/", NULL, &text);
	if (ret)
		return ret;
	doc = cJSON_Parse(text);
	free(text);
	id = cJSON_GetObjectItemCaseSensitive(doc, "id");
	state = cJSON_GetObjectItemCaseSensitive(doc, "state");
	if (!cJSON_IsString(id) || !cJSON_IsString(state)) {
		cJSON_Delete(doc);
		return aeth__error_set(AETH_EPROTO,
				       "firecracker API at %s: GET / answered without id/state",
				       api->sock_path);
	}
	ret = 0;
	if (id_out && !(*id_out = aeth__strdup(id->valuestring)))
		ret = AETH_ENOMEM;
	if (!ret && state_out && !(*state_out = aeth__strdup(state->valuestring))) {
		ret = AETH_ENOMEM;
		if (id_out) {
			free(*id_out);
			*id_out = NULL;
		}
	}
	cJSON_Delete(doc);
	return ret;
}
