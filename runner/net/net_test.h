/* net/net_test.h — what tests reach inside net/, and nothing else includes:
 * the runtime libcurl check as a pure function, and a fault injector for
 * the checked options. Neither can make a request go where it would not:
 * the injector only makes submissions fail. */
#ifndef NET_NET_TEST_H
#define NET_NET_TEST_H

struct bh_err;

/* What net_new learns of the loaded libcurl (curl_version_info). */
struct net_curl_facts {
    const char *version;          /* "7.88.1" */
    unsigned version_num;         /* 0xXXYYZZ */
    int ssl;                      /* CURL_VERSION_SSL is set */
    const char *const *protocols; /* NULL-terminated, lowercase */
};

/* 0 when such a libcurl gives every safety property net/ relies on;
 * BH_EINVAL naming the version and what to install otherwise. */
int net_curl_usable(const struct net_curl_facts *f, struct bh_err *err);

/* Makes every later curl_easy_setopt of the option named (its CURLOPT_
 * name, e.g. "CURLOPT_PROTOCOLS_STR") count as refused by libcurl, so that
 * net_submit fails and sends nothing; NULL or "" stops injecting. */
void net_test_fail_setopt(const char *name);

#endif
