/* net/url.c — a URL split by libcurl's URL API, the parser that later sends
 * the request, so that the host egress verifies is the host curl connects
 * to. Only the parts egress judges are taken out; what they mean (which
 * schemes are allowed, whether credentials may appear) is egress's call. */
#include "net/net.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "util/bh_err.h"

/* The part, or "" when the URL has none or it does not fit. */
static void url_part(CURLU *u, CURLUPart what, unsigned flags, char *out, size_t size)
{
    char *v = NULL;
    out[0] = '\0';
    if (curl_url_get(u, what, &v, flags) != CURLUE_OK)
        return;
    if ((size_t)snprintf(out, size, "%s", v) >= size)
        out[0] = '\0';
    curl_free(v);
}

static int has_part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
        return 0;
    curl_free(v);
    return 1;
}

static int split(CURLU *u, const char *url, struct net_url *out, struct bh_err *err)
{
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        return bh_err_set(err, BH_EINVAL,
                          "'%s' is not a valid URL (%s): write it as http://host:port", url,
                          curl_url_strerror(uc));
    url_part(u, CURLUPART_SCHEME, 0, out->scheme, sizeof(out->scheme));
    url_part(u, CURLUPART_HOST, 0, out->host, sizeof(out->host));
    url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, out->port, sizeof(out->port));
    out->credentials = has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD);
    size_t hl = strlen(out->host);
    if (hl >= 2 && out->host[0] == '[' && out->host[hl - 1] == ']') {
        memmove(out->host, out->host + 1, hl - 2);
        out->host[hl - 2] = '\0';
    }
    return 0;
}

int net_url_parse(const char *url, struct net_url *out, struct bh_err *err)
{
    memset(out, 0, sizeof(*out));
    CURLU *u = curl_url();
    int rc = u ? split(u, url, out, err)
               : bh_err_set(err, BH_EINTERNAL, "cannot create a libcurl URL handle");
    curl_url_cleanup(u);
    return rc;
}
