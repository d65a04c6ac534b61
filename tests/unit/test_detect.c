/* tests/unit/test_detect.c — the content detectors: for each, realistic true
 * positives (with the exact span expected) and near misses; lines, ordering,
 * caps, the no-text hit, group lookup, and robustness on random bytes and
 * 1 MB adversarial buffers.
 *
 * Every key and token below is made up (random bodies, no live credential),
 * and token prefixes are split ("gh" "p_...") so that secret scanners run
 * over this repository do not flag the test source itself. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

/* A hit carries no text: detector, offset, length, line and nothing else. */
_Static_assert(sizeof(struct det_hit) == sizeof(void *) + 3 * sizeof(size_t),
               "struct det_hit must not grow a text field");

struct sample {
    const char *text;
    const char *match; /* the exact span expected; NULL: no hit */
};

static void run_samples(const char *id, const struct sample *s, size_t n)
{
    const struct det_detector *det = det_find(id);
    assert_non_null(det);
    size_t tp = 0, fp = 0;
    for (size_t i = 0; i < n; i++) {
        struct det_hit *hits = NULL;
        size_t n_hits = 99;
        assert_int_equal(det_scan(s[i].text, strlen(s[i].text), &det, 1, &hits, &n_hits, 0), 0);
        if (!s[i].match) {
            if (n_hits != 0)
                print_error("%s: unexpected hit in sample %zu: %s\n", id, i, s[i].text);
            assert_int_equal(n_hits, 0);
            assert_null(hits);
            fp++;
            continue;
        }
        if (n_hits != 1)
            print_error("%s: %zu hits in sample %zu: %s\n", id, n_hits, i, s[i].text);
        assert_int_equal(n_hits, 1);
        assert_ptr_equal(hits[0].detector, det);
        assert_int_equal(hits[0].length, strlen(s[i].match));
        assert_memory_equal(s[i].text + hits[0].offset, s[i].match, hits[0].length);
        det_hits_free(hits);
        tp++;
    }
    assert_true(tp >= 5);
    assert_true(fp >= 5);
}

#define RUN(id, table) run_samples(id, table, BH_NELEM(table))

static void detect_private_key_finds_pem_blocks_not_public_ones(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx3f9Zq0p1Y\nq8Lm2Zt7Rk9vW3pQ==\n"
         "-----END RSA PRIVATE KEY-----\n",
         "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx3f9Zq0p1Y\nq8Lm2Zt7Rk9vW3pQ==\n"
         "-----END RSA PRIVATE KEY-----"},
        {"key = \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n"
         "-----END OPENSSH PRIVATE KEY-----\"",
         "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n"
         "-----END OPENSSH PRIVATE KEY-----"},
        {"+-----BEGIN EC PRIVATE KEY-----\n+MHcCAQEEIBx9aQ2\n",
         "-----BEGIN EC PRIVATE KEY-----\n+MHcCAQEEIBx9aQ2"},
        {"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n"
         "-----END ENCRYPTED PRIVATE KEY-----",
         "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n"
         "-----END ENCRYPTED PRIVATE KEY-----"},
        {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
         "DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\nq8Lm2Zt7Rk9v\n-----END RSA PRIVATE KEY-----",
         "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
         "DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\nq8Lm2Zt7Rk9v\n-----END RSA PRIVATE KEY-----"},
        {"files start with -----BEGIN PRIVATE KEY----- and then base64.",
         "-----BEGIN PRIVATE KEY-----"},
        {"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0",
         "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0"},
        {"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----", NULL},
        {"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----", NULL},
        {"-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA\n-----END RSA PUBLIC KEY-----", NULL},
        {"if (line.startsWith(\"-----BEGIN \")) { return parsePem(line); }", NULL},
        {"-----BEGIN PGP SIGNATURE-----\niQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----", NULL},
        {"see BEGIN RSA PRIVATE KEY in the docs", NULL},
        {"-----BEGIN NOTPRIVATE KEY-----", NULL},
    };
    RUN("private-key", s);
}

static void detect_aws_access_key_needs_exact_length_and_word_bounds(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"aws_access_key_id = AK"
         "IAQW7B3PDKHX4PY8GP\n",
         "AK"
         "IAQW7B3PDKHX4PY8GP"},
        {"export AWS_ACCESS_KEY_ID=\"AK"
         "IAAN0RLYKEI2IIAANN\"",
         "AK"
         "IAAN0RLYKEI2IIAANN"},
        {"{\"AccessKeyId\": \"AS"
         "IAQEVTAVETWT4UL44L\"}",
         "AS"
         "IAQEVTAVETWT4UL44L"},
        {"key: AK"
         "IAKKSUM8NLMYTBX0KJ\n",
         "AK"
         "IAKKSUM8NLMYTBX0KJ"},
        {"creds=AS"
         "IAZ3M8K2QX7RT4VW9P;",
         "AS"
         "IAZ3M8K2QX7RT4VW9P"},
        {"aws_access_key_id = AKIAEXAMPLE", NULL},
        {"id = AK"
         "IAQW7B3PDKHX4PY8GPX",
         NULL},
        {"XAK"
         "IAQW7B3PDKHX4PY8GP",
         NULL},
        {"ak"
         "iaqw7b3pdkhx4py8gp",
         NULL},
        {"AK"
         "IAQW7B3PDKHX4py8gp",
         NULL},
        {"AK"
         "IBQW7B3PDKHX4PY8GP",
         NULL},
        {"AK"
         "IA0000000000000000",
         NULL},
    };
    RUN("aws-access-key", s);
}

static void detect_aws_secret_key_only_in_assignments(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"aws_secret_access_key = hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwkt\n",
         "hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwkt"},
        {"AWS_SECRET_ACCESS_KEY=\"N9ugkZeESG61she+QAqq0nv3Vth1Ls6v6/O9JL8Z\"",
         "N9ugkZeESG61she+QAqq0nv3Vth1Ls6v6/O9JL8Z"},
        {"  \"SecretAccessKey\": \"soWw+Rxl/IUiTeNUJ/HLRwb8GPJ7KTSJS0Sw5UQs\",",
         "soWw+Rxl/IUiTeNUJ/HLRwb8GPJ7KTSJS0Sw5UQs"},
        {"aws_secret_key: 'vzU9Kk1v1MIdzu4xCxf8CvgroOx9ye17SWjAEVaS'",
         "vzU9Kk1v1MIdzu4xCxf8CvgroOx9ye17SWjAEVaS"},
        {"awsSecretAccessKey := \"ZJ0oVeMmLRLTq10V7suW9zrlSaWnPsPW23C+L9WX\"",
         "ZJ0oVeMmLRLTq10V7suW9zrlSaWnPsPW23C+L9WX"},
        {"aws_secret_access_key = hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwk", NULL},
        {"aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']", NULL},
        {"if aws_secret_access_key == hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwkt:", NULL},
        {"session_token = hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwkt", NULL},
        {"sha1 hGcTZc1UWb5fxzpF7STG7nVLe3lARUsRJlNONwkt", NULL},
        {"aws_secret_access_key = <your-secret-access-key>", NULL},
    };
    RUN("aws-secret-key", s);
}

static void detect_google_api_key_is_aiza_and_35(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"GOOGLE_API_KEY=AI"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-Y",
         "AI"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-Y"},
        {"maps.js?key=AI"
         "zahgG05NgeywZyDkOnlujBc4T_2WqbN5CorN9&v=3",
         "AI"
         "zahgG05NgeywZyDkOnlujBc4T_2WqbN5CorN9"},
        {"\"apiKey\": \"AI"
         "zalHZOqqk8Fk2FJh-FgzKVmj1OWaKqd4scg2I\"",
         "AI"
         "zalHZOqqk8Fk2FJh-FgzKVmj1OWaKqd4scg2I"},
        {"const k = 'AI"
         "zanWqPiNvrH-PKeiddpgqT3HcD2qUzQTbuumI';",
         "AI"
         "zanWqPiNvrH-PKeiddpgqT3HcD2qUzQTbuumI"},
        {"AI"
         "zavs532pQO5D73v4gu8_anq1gAaeE9TY7BzJz",
         "AI"
         "zavs532pQO5D73v4gu8_anq1gAaeE9TY7BzJz"},
        {"key=AI"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-",
         NULL},
        {"key=AI"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-YZ",
         NULL},
        {"key=AI"
         "zaSy...",
         NULL},
        {"xAI"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-Y",
         NULL},
        {"ai"
         "zaUNx7UKi7uEwAf3Ia7h50vfeSmjE_l8gFg-Y",
         NULL},
    };
    RUN("google-api-key", s);
}

static void detect_github_token_prefixes_and_lengths(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"GITHUB_TOKEN=gh"
         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaE",
         "gh"
         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaE"},
        {"token: gh"
         "o_IJrp7EYcpFr2jUssFMEHP3M4V5hbWitsITvN\n",
         "gh"
         "o_IJrp7EYcpFr2jUssFMEHP3M4V5hbWitsITvN"},
        {"Authorization: token gh"
         "u_sUHbDwxRV0LicaqJDR6g4RImaBXZBMKST9OP",
         "gh"
         "u_sUHbDwxRV0LicaqJDR6g4RImaBXZBMKST9OP"},
        {"\"gh"
         "s_E261yEzR2Um5sD1Wet1aSXBLsPXE6tjkESJ4\"",
         "gh"
         "s_E261yEzR2Um5sD1Wet1aSXBLsPXE6tjkESJ4"},
        {"refresh=gh"
         "r_FvIjBLIZdeUor0fYeQ8bvUBezSFdh1hoNP08;",
         "gh"
         "r_FvIjBLIZdeUor0fYeQ8bvUBezSFdh1hoNP08"},
        {"pat github"
         "_pat_hT5isT6CjlNlAZkeNncJgQyVerdKKhVz4NiaBfuRMFFw8Px6diSsjKORGs68JJNoqeJpq1WsH_iZp3xDVy "
         "end",
         "github"
         "_pat_hT5isT6CjlNlAZkeNncJgQyVerdKKhVz4NiaBfuRMFFw8Px6diSsjKORGs68JJNoqeJpq1WsH_iZp3xDVy"},
        {"gh"
         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0za",
         NULL},
        {"gh"
         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaEE",
         NULL},
        {"gh"
         "x_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaE",
         NULL},
        {"gh"
         "p_926kMMqVtFqAbu8tF7sjEb-hQN9CpscYi0za",
         NULL},
        {"my_gh"
         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaE",
         NULL},
        {"GITHUB_TOKEN=gh"
         "p_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         NULL},
    };
    RUN("github-token", s);
}

static void detect_gitlab_token_is_glpat_and_20(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"GITLAB_TOKEN=gl"
         "pat-wqcRkelp6EX79PndXgt2",
         "gl"
         "pat-wqcRkelp6EX79PndXgt2"},
        {"PRIVATE-TOKEN: gl"
         "pat-Cok_BrWTELQSXWrTL3Ue\r\n",
         "gl"
         "pat-Cok_BrWTELQSXWrTL3Ue"},
        {"'gl"
         "pat-BxYimeexzzf_9Sa28M2P'",
         "gl"
         "pat-BxYimeexzzf_9Sa28M2P"},
        {"url = https://oauth2:gl"
         "pat-77mytujVX8tGoJuKEe9e@gitlab.com/x.git",
         "gl"
         "pat-77mytujVX8tGoJuKEe9e"},
        {"(gl"
         "pat-SVOhc68tpPL6EuezdDkZ)",
         "gl"
         "pat-SVOhc68tpPL6EuezdDkZ"},
        {"gl"
         "pat-wqcRkelp6EX79PndXgt",
         NULL},
        {"gl"
         "pat-wqcRkelp6EX79PndXgt23",
         NULL},
        {"gl"
         "pat_wqcRkelp6EX79PndXgt2",
         NULL},
        {"xgl"
         "pat-wqcRkelp6EX79PndXgt2",
         NULL},
        {"gl"
         "pat-xxxxxxxxxxxxxxxxxxxx",
         NULL},
    };
    RUN("gitlab-token", s);
}

static void detect_slack_token_needs_digits_after_prefix(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"SLACK_BOT_TOKEN=xo"
         "xb-2918374650123-4810293847561-Zq8rT2mW9xKp4LvNc7Hs1DfG",
         "xo"
         "xb-2918374650123-4810293847561-Zq8rT2mW9xKp4LvNc7Hs1DfG"},
        {"\"xo"
         "xp-7261539480-7261539481-8172635490-c3f9a1b2d4e6f8091a2b3c4d5e6f7a8b\"",
         "xo"
         "xp-7261539480-7261539481-8172635490-c3f9a1b2d4e6f8091a2b3c4d5e6f7a8b"},
        {"token xo"
         "xa-2-5839201746-9182736450-Qm3Lp8Zt",
         "xo"
         "xa-2-5839201746-9182736450-Qm3Lp8Zt"},
        {"xo"
         "xr-5566778899-AbCq83Lz",
         "xo"
         "xr-5566778899-AbCq83Lz"},
        {"legacy: xo"
         "xs-1029384756-5647382910-1029384756-9f8e7d6c5b",
         "xo"
         "xs-1029384756-5647382910-1029384756-9f8e7d6c5b"},
        {"xo"
         "xb-",
         NULL},
        {"xo"
         "xb-abcdefghijklmnop",
         NULL},
        {"xo"
         "xb-12345",
         NULL},
        {"xo"
         "xz-2918374650123-4810293847561",
         NULL},
        {"xo"
         "xb_2918374650123-4810293847561",
         NULL},
        {"the xo"
         "xb- prefix marks bot tokens",
         NULL},
    };
    RUN("slack-token", s);
}

#define JWT_H "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define JWT_P "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgUm9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
#define JWT_S "MTEUTFh-ZSssE_WemvYmKzP98lzWbnxXcOdNX8Z5hs1"

static void detect_jwt_decodes_the_header(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"Authorization: Bearer " JWT_H "." JWT_P "." JWT_S "\n", JWT_H "." JWT_P "." JWT_S},
        {"{\"id_token\":\"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." JWT_P "." JWT_S "\"}",
         "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." JWT_P "." JWT_S},
        {"unsigned: eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTQyIiwiZXhwIjoxOTAwMDAwMDAwfQ. ok",
         "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTQyIiwiZXhwIjoxOTAwMDAwMDAwfQ."},
        {"jwe=eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.UcAKKjdlT0NbJEjelMSA9l.Zm9v.YmFyYmF6."
         "cXV4",
         "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.UcAKKjdlT0NbJEjelMSA9l.Zm9v.YmFyYmF6."
         "cXV4"},
        {"curl -H 'x-auth: " JWT_H "." JWT_P "." JWT_S "'", JWT_H "." JWT_P "." JWT_S},
        {JWT_H, NULL},
        {"eyJ0b2tlbiI6MX0.eyJzdWIiOiIxIn0.c2ln", NULL},
        {"eyJfooBarBaz.quxQux.quux", NULL},
        {"x" JWT_H "." JWT_P "." JWT_S, NULL},
        {JWT_H ".e." JWT_S, NULL},
        {"com.example.app.MainActivity.onCreate", NULL},
    };
    RUN("jwt", s);
}

static void detect_secret_assignment_needs_entropy_and_no_placeholder(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"DB_PASSWORD=Xk9#mQ2$vLp8\n", "Xk9#mQ2$vLp8"},
        {"password: \"Tr0ub4dor&3x\"", "Tr0ub4dor&3x"},
        {"\"api_key\": \"a8f5f167f44f4964e6c998dee827110c\",", "a8f5f167f44f4964e6c998dee827110c"},
        {"client_secret = 'q7Wz-2Lm9_Rt4Vb8'", "q7Wz-2Lm9_Rt4Vb8"},
        {"apiKey := \"9f86d081884c7d65\"", "9f86d081884c7d65"},
        {"mysql --password=hG7kq2Lm9x -u root", "hG7kq2Lm9x"},
        {"auth_token => 'Zq8rT2mW9xKp4LvN'", "Zq8rT2mW9xKp4LvN"},
        {"password = \"changeme123\"", NULL},
        {"password = os.environ[\"DB_PASSWORD\"]", NULL},
        {"token = self.token", NULL},
        {"password: ${DB_PASSWORD}", NULL},
        {"password: $DB_PASSWORD_2024", NULL},
        {"api_key = \"<your-api-key>\"", NULL},
        {"secret = \"****************\"", NULL},
        {"if password == \"Xk9#mQ2$vLp8\":", NULL},
        {"max_tokens = 4096", NULL},
        {"password = \"hunter2\"", NULL},
        {"token_type: \"bearer\"", NULL},
        {"password = \"xxxxxxxxxxxx\"", NULL},
        {"password = getpass.getpass()", NULL},
        {"const password = req.body.password;", NULL},
        {"password: new_password_value", NULL},
        {"_M_token = __it->second;", NULL},
        {"random_device(const std::string& __token = \"/dev/urandom\")", NULL},
        {"const password = 'Password used to generate key';", NULL},
        {"CHALLENGE_PASSWORD: \"challengePassword\",", NULL},
        {"consumer_secret=\"consumer.secret\",", NULL},
        {"GET /cb?oauth_token=h480djs93hd8&state=xyz", "h480djs93hd8"},
    };
    RUN("secret-assignment", s);
}

static void detect_email_needs_a_real_domain(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"Contact: jane.roe@acme-corp.com.", "jane.roe@acme-corp.com"},
        {"<a href=\"mailto:ops+alerts@mail.example.co.uk\">", "ops+alerts@mail.example.co.uk"},
        {"Signed-off-by: Jan Novak <jan.novak@firma.cz>", "jan.novak@firma.cz"},
        {"\"email\": \"Q.Smith_99@Uni-Bonn.DE\"", "Q.Smith_99@Uni-Bonn.DE"},
        {"author=dev.team@sub.domain.io,", "dev.team@sub.domain.io"},
        {"user@localhost", NULL},
        {"x@y", NULL},
        {"git clone git@github.com:org/repo.git", NULL},
        {"<img src=\"icon@2x.png\">", NULL},
        {"npm i lodash@4.17.21", NULL},
        {"@Override public void run()", NULL},
        {"foo@bar.c", NULL},
        {"jane@-acme.com", NULL},
        {"systemctl start pg_dump@version-cluster.timer", NULL},
        {"Message-ID: <20191119204459.312927aa@rigel.localdomain>", NULL},
    };
    RUN("email", s);
}

static void detect_card_needs_luhn_and_a_known_issuer(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"card=4135866066283957;", "4135866066283957"},
        {"Card: 5391 2162 3199 8665 exp 12/27", "5391 2162 3199 8665"},
        {"amex 3752-602149-89920", "3752-602149-89920"},
        {"{\"pan\": \"4651853134449\"}", "4651853134449"},
        {"6011635915107285,John", "6011635915107285"},
        {"mc 2223367893464198", "2223367893464198"},
        {"discover 6515376397103211527.", "6515376397103211527"},
        {"card=4135866066283958;", NULL},
        {"4135 8660 6628 3958", NULL},
        {"order id 1234567812345670", NULL},
        {"ratio 0.4135866066283957", NULL},
        {"trace-4135866066283957", NULL},
        {"ts=1700000000000", NULL},
        {"4135866066283957123", NULL},
        {"4135-8660 6628-3957", NULL},
    };
    RUN("card", s);
}

static void detect_iban_checks_mod97_and_length(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"IBAN: DE37271368760195207651\n", "DE37271368760195207651"},
        {"FR09 7401 7535 6247 1914 6518 603 (Paris)", "FR09 7401 7535 6247 1914 6518 603"},
        {"GB48NWBK63412418762863", "GB48NWBK63412418762863"},
        {"\"iban\": \"NL83 ABNA 1752 1025 00\"", "NL83 ABNA 1752 1025 00"},
        {"ES3148768103370781497800", "ES3148768103370781497800"},
        {"IT77X2686999030666602524361", "IT77X2686999030666602524361"},
        {"pay to CH9153663427540127116.", "CH9153663427540127116"},
        {"BE29 0623 0759 7273 EUR", "BE29 0623 0759 7273"},
        {"BR541590026142553248814116545", "BR541590026142553248814116545"},
        {"DE37271368760195207652", NULL},
        {"DE3727136876019520765", NULL},
        {"de37271368760195207651", NULL},
        {"AB12CDEF34567890GHIJK", NULL},
        {"DE37271368760195207651X", NULL},
        {"SHA DE37 2713", NULL},
        {"fingerprint FB27 CF2D 2160 94DF", NULL},
    };
    RUN("iban", s);
}

static void detect_ssn_excludes_never_issued_numbers(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"SSN: 536-22-1784", "536-22-1784"},
        {"ssn=245-81-0932;", "245-81-0932"},
        {"\"ssn\": \"771-03-4460\"", "771-03-4460"},
        {"Taxpayer 401-56-7290 filed", "401-56-7290"},
        {"(078-05-1121)", "078-05-1121"},
        {"000-12-3456", NULL},
        {"666-12-3456", NULL},
        {"912-34-5678", NULL},
        {"123-00-4567", NULL},
        {"123-45-0000", NULL},
        {"078-05-1120", NULL},
        {"219-09-9999", NULL},
        {"536 22 1784", NULL},
        {"date 2023-10-15", NULL},
        {"+1-536-22-1784", NULL},
        {"536-22-17845", NULL},
    };
    RUN("us-ssn", s);
}

static void detect_private_ipv4_only_private_ranges(void **state)
{
    (void)state;
    static const struct sample s[] = {
        {"server 10.0.0.1", "10.0.0.1"},
        {"host: 192.168.1.20:8080", "192.168.1.20"},
        {"gw=172.16.254.3,", "172.16.254.3"},
        {"cidr 172.31.0.10/16", "172.31.0.10"},
        {"ip=10.255.255.255.", "10.255.255.255"},
        {"dns 8.8.8.8", NULL},
        {"version 10.0.0", NULL},
        {"10.0.0.1.2", NULL},
        {"172.32.0.1", NULL},
        {"192.169.1.1", NULL},
        {"010.0.0.1", NULL},
        {"10.0.0.256", NULL},
        {"v10.0.0.1", NULL},
        {"1.10.0.0.1", NULL},
    };
    RUN("private-ipv4", s);
}

/* ---- the scan ---- */

static void detect_scan_sorts_hits_and_counts_lines(void **state)
{
    (void)state;
    const char *text = "first line\n"
                       "mail jane.roe@acme-corp.com and 10.1.2.3\n"
                       "\n"
                       "key AK"
                       "IAQW7B3PDKHX4PY8GP\r\n"
                       "ssn 536-22-1784";
    struct det_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(det_scan(text, strlen(text), NULL, 0, &hits, &n, 0), 0);
    assert_int_equal(n, 4);
    static const char *ids[] = {"email", "private-ipv4", "aws-access-key", "us-ssn"};
    static const size_t lines[] = {2, 2, 4, 5};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(hits[i].detector->id, ids[i]);
        assert_int_equal(hits[i].line, lines[i]);
        if (i > 0)
            assert_true(hits[i].offset > hits[i - 1].offset);
    }
    assert_memory_equal(text + hits[3].offset, "536-22-1784", 11);
    det_hits_free(hits);
}

static void detect_scan_finds_every_occurrence(void **state)
{
    (void)state;
    const char *text = "a=10.0.0.1 b=10.0.0.2\nc=192.168.0.1 d=8.8.8.8 e=172.20.1.1";
    const struct det_detector *ip = det_find("private-ipv4");
    struct det_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(det_scan(text, strlen(text), &ip, 1, &hits, &n, 0), 0);
    assert_int_equal(n, 4);
    assert_int_equal(hits[2].line, 2);
    assert_int_equal(hits[3].offset, strlen(text) - strlen("172.20.1.1"));
    det_hits_free(hits);
}

static int contains_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static void detect_hits_hold_no_copy_of_the_secret(void **state)
{
    (void)state;
    const char *secret = "gh"
                         "p_926kMMqVtFqAbu8tF7sjEbhQN9CpscYi0zaE";
    char text[128];
    snprintf(text, sizeof(text), "token: %s\n", secret);
    struct det_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(det_scan(text, strlen(text), NULL, 0, &hits, &n, 0), 0);
    assert_true(n >= 1);
    /* Neither the hit array nor anything it points to outside the input
     * holds the text: overwrite the input and the hits still make sense. */
    assert_false(contains_bytes((const char *)hits, n * sizeof(*hits), secret + 4, 8));
    memset(text, '#', strlen(text));
    for (size_t i = 0; i < n; i++) {
        assert_null(strstr(hits[i].detector->id, "926k"));
        assert_int_equal(hits[i].line, 1);
    }
    det_hits_free(hits);
}

static void detect_scan_refuses_oversize_and_too_many_hits(void **state)
{
    (void)state;
    const char *text = "10.0.0.1 10.0.0.2 10.0.0.3";
    struct det_hit *hits = (struct det_hit *)0x1;
    size_t n = 77;
    struct det_opts o = DET_OPTS_INIT;
    o.max_bytes = 10;
    assert_int_equal(det_scan_opts(text, strlen(text), &o, &hits, &n), BH_ETOOBIG);
    assert_ptr_equal(hits, (struct det_hit *)0x1);
    assert_int_equal(n, 77);
    assert_int_equal(det_scan(text, strlen(text), NULL, 0, &hits, &n, 2), BH_ETOOBIG);
    assert_int_equal(n, 77);
    assert_int_equal(det_scan(text, strlen(text), NULL, 0, &hits, &n, 3), 0);
    assert_int_equal(n, 3);
    det_hits_free(hits);
    assert_int_equal(det_scan("", 0, NULL, 0, &hits, &n, 0), 0);
    assert_int_equal(n, 0);
    assert_null(hits);
}

/* ---- the table and lookups ---- */

static void detect_table_ids_unique_and_labels_known(void **state)
{
    (void)state;
    size_t n = 0;
    const struct det_detector *t = det_all(&n);
    assert_int_equal(n, 14);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(det_find(t[i].id), &t[i]);
        assert_true(strcmp(t[i].label, "restricted") == 0 ||
                    strcmp(t[i].label, "confidential") == 0 || strcmp(t[i].label, "internal") == 0);
        /* secrets raise to the top: they are never declassified */
        assert_int_equal(t[i].secret, strcmp(t[i].label, "restricted") == 0);
    }
    assert_null(det_find("nope"));
    assert_null(det_find(NULL));
}

static void detect_group_lookup_returns_members(void **state)
{
    (void)state;
    const struct det_detector *out[8];
    assert_int_equal(det_group("cloud-keys", out, 8), 3);
    assert_string_equal(out[0]->id, "aws-access-key");
    assert_string_equal(out[2]->id, "google-api-key");
    assert_int_equal(det_group("tokens", out, 2), 5);
    assert_string_equal(out[1]->id, "gitlab-token");
    assert_int_equal(det_group("nope", out, 8), 0);
    size_t n = 0;
    assert_int_equal(det_resolve("email", out, 8, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(det_resolve("internal-ip", out, 8, &n, NULL), 0);
    assert_string_equal(out[0]->id, "private-ipv4");
}

static void detect_resolve_unknown_names_groups_and_suggests(void **state)
{
    (void)state;
    const struct det_detector *out[8];
    size_t n = 5;
    struct bh_err err;
    bh_err_clear(&err);
    assert_int_equal(det_resolve("cloud-key", out, 8, &n, &err), BH_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_string_equal(err.msg,
                        "unknown detector 'cloud-key' (known groups: private-key, cloud-keys, "
                        "tokens, email, card, iban, ssn, internal-ip; or a detector id such as "
                        "'aws-access-key') — did you mean 'cloud-keys'?");
    bh_err_clear(&err);
    assert_int_equal(det_resolve("qqqqqqqqqq", out, 8, &n, &err), BH_ENOTFOUND);
    assert_null(strstr(err.msg, "did you mean"));
}

/* ---- robustness ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Bytes that often start or continue a match, so random buffers reach deep
 * into the matchers, mixed with any byte at all (NULs, high bytes). */
static void fill_random(char *b, size_t n, uint64_t *s)
{
    static const char *frags[] = {"-----BEGIN ",
                                  "PRIVATE KEY-----",
                                  "-----END ",
                                  "AK"
                                  "IA",
                                  "gh"
                                  "p_",
                                  "gl"
                                  "pat-",
                                  "xo"
                                  "xb-",
                                  "AI"
                                  "za",
                                  "eyJhbGci",
                                  "eyJ",
                                  ".",
                                  "@",
                                  "password=",
                                  "\"",
                                  "10.",
                                  "192.168.",
                                  "4",
                                  "-",
                                  " ",
                                  "\n",
                                  "DE",
                                  "536-22-",
                                  "0",
                                  "=",
                                  ":"};
    size_t i = 0;
    while (i < n) {
        uint64_t r = rng_next(s);
        if (r % 3 == 0) {
            const char *f = frags[(r >> 8) % (BH_NELEM(frags))];
            for (size_t k = 0; f[k] && i < n; k++)
                b[i++] = f[k];
        } else if (r % 3 == 1) {
            b[i++] = (char)("AZaz09+/_-.xX"[(r >> 8) % 13]);
        } else {
            b[i++] = (char)(r >> 16);
        }
    }
}

static void detect_random_buffers_give_sane_hits(void **state)
{
    (void)state;
    uint64_t seed = 0x5eedULL;
    size_t total = 0;
    for (int round = 0; round < 10000; round++) {
        size_t n = (size_t)(rng_next(&seed) % 1500);
        char *b = malloc(n ? n : 1); /* exact size: ASan catches any overread */
        fill_random(b, n, &seed);
        struct det_hit *hits = NULL;
        size_t n_hits = 0;
        int rc = det_scan(b, n, NULL, 0, &hits, &n_hits, 100000);
        assert_int_equal(rc, 0);
        size_t line = 1, pos = 0;
        for (size_t i = 0; i < n_hits; i++) {
            assert_true(hits[i].length > 0 && hits[i].offset + hits[i].length <= n);
            assert_true(i == 0 || hits[i].offset >= hits[i - 1].offset);
            for (; pos < hits[i].offset; pos++)
                line += b[pos] == '\n';
            assert_int_equal(hits[i].line, line);
        }
        total += n_hits;
        det_hits_free(hits);
        free(b);
    }
    assert_true(total > 0); /* the fragments do produce hits sometimes */
}

/* Scans 1 MB of a repeated pattern; the count proves every repetition was
 * seen. A quadratic matcher would not finish (ctest's timeout). */
static size_t scan_repeated(const char *unit, const char *id)
{
    size_t u = strlen(unit), n = ((size_t)1 << 20) / u * u;
    char *b = malloc(n);
    for (size_t i = 0; i < n; i += u)
        memcpy(b + i, unit, u);
    const struct det_detector *one = id ? det_find(id) : NULL;
    struct det_hit *hits = NULL;
    size_t n_hits = 0;
    assert_int_equal(det_scan(b, n, id ? &one : NULL, id ? 1 : 0, &hits, &n_hits, (size_t)1 << 20),
                     0);
    det_hits_free(hits);
    free(b);
    return n_hits;
}

static void detect_megabyte_adversarial_inputs_run_through(void **state)
{
    (void)state;
    size_t mb = (size_t)1 << 20;
    assert_int_equal(scan_repeated("A", NULL), 0);
    assert_int_equal(scan_repeated("a", NULL), 0);
    assert_int_equal(scan_repeated("@", NULL), 0);
    assert_int_equal(scan_repeated("1", NULL), 0);
    assert_int_equal(scan_repeated("AK"
                                   "IA",
                                   NULL),
                     0);
    assert_int_equal(scan_repeated("eyJhbGci", NULL), 0);
    assert_int_equal(scan_repeated("a.", NULL), 0);
    assert_int_equal(scan_repeated("password=", NULL), 0);
    assert_int_equal(scan_repeated("-----BEGIN ", NULL), 0);
    assert_int_equal(scan_repeated("a@b.co ", "email"), mb / 7);
    assert_int_equal(scan_repeated("10.0.0.1 ", "private-ipv4"), mb / 9);
    assert_int_equal(scan_repeated("-----BEGIN RSA PRIVATE KEY-----", "private-key"), mb / 31);
    assert_int_equal(scan_repeated("4135 8660 6628 3957 ", "card"), mb / 20);
    assert_int_equal(scan_repeated("eyJhbGciOiJub25lIn0.eyJ9.x ", "jwt"), mb / 27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detect_private_key_finds_pem_blocks_not_public_ones),
        cmocka_unit_test(detect_aws_access_key_needs_exact_length_and_word_bounds),
        cmocka_unit_test(detect_aws_secret_key_only_in_assignments),
        cmocka_unit_test(detect_google_api_key_is_aiza_and_35),
        cmocka_unit_test(detect_github_token_prefixes_and_lengths),
        cmocka_unit_test(detect_gitlab_token_is_glpat_and_20),
        cmocka_unit_test(detect_slack_token_needs_digits_after_prefix),
        cmocka_unit_test(detect_jwt_decodes_the_header),
        cmocka_unit_test(detect_secret_assignment_needs_entropy_and_no_placeholder),
        cmocka_unit_test(detect_email_needs_a_real_domain),
        cmocka_unit_test(detect_card_needs_luhn_and_a_known_issuer),
        cmocka_unit_test(detect_iban_checks_mod97_and_length),
        cmocka_unit_test(detect_ssn_excludes_never_issued_numbers),
        cmocka_unit_test(detect_private_ipv4_only_private_ranges),
        cmocka_unit_test(detect_scan_sorts_hits_and_counts_lines),
        cmocka_unit_test(detect_scan_finds_every_occurrence),
        cmocka_unit_test(detect_hits_hold_no_copy_of_the_secret),
        cmocka_unit_test(detect_scan_refuses_oversize_and_too_many_hits),
        cmocka_unit_test(detect_table_ids_unique_and_labels_known),
        cmocka_unit_test(detect_group_lookup_returns_members),
        cmocka_unit_test(detect_resolve_unknown_names_groups_and_suggests),
        cmocka_unit_test(detect_random_buffers_give_sane_hits),
        cmocka_unit_test(detect_megabyte_adversarial_inputs_run_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
