// sha256.h — SHA-256 (FIPS 180-4) for content hashes of shards, tokenizers and checkpoints; the
// work is OpenSSL libcrypto's (bench/tokenizer-sha256.sh measures it against nettle).
#ifndef DS_SHA256_H
#define DS_SHA256_H

#include <stddef.h>
#include <stdint.h>

// sha256_init starts a hash, sha256_final ends it and releases what init took: every init needs
// its final.
typedef struct Sha256 {
    void *ctx; // libcrypto's EVP_MD_CTX
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[32]);
// hex must hold 65 bytes; returns hex.
char *sha256_hex(const void *data, size_t n, char hex[65]);
void sha256_to_hex(const uint8_t digest[32], char hex[65]);

#endif
