// sha256.c — SHA-256 through OpenSSL's libcrypto (SHA-NI or tuned assembly where the CPU has them).
#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/common.h"

void sha256_init(Sha256 *s) {
    s->ctx = EVP_MD_CTX_new();
    DS_CHECK(s->ctx != NULL && EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) == 1);
}

void sha256_update(Sha256 *s, const void *data, size_t n) {
    DS_CHECK(EVP_DigestUpdate(s->ctx, data, n) == 1);
}

void sha256_final(Sha256 *s, uint8_t out[32]) {
    unsigned int len = 0;
    DS_CHECK(EVP_DigestFinal_ex(s->ctx, out, &len) == 1 && len == 32);
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}

void sha256_to_hex(const uint8_t digest[32], char hex[65]) {
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) hex[2 * i] = d[digest[i] >> 4], hex[2 * i + 1] = d[digest[i] & 15];
    hex[64] = 0;
}

char *sha256_hex(const void *data, size_t n, char hex[65]) {
    uint8_t dg[32];
    unsigned int len = 0;
    DS_CHECK(EVP_Digest(data, n, dg, &len, EVP_sha256(), NULL) == 1 && len == 32);
    sha256_to_hex(dg, hex);
    return hex;
}
