#!/usr/bin/env bats
# Shared library pieces: hashing, random streams, JSONL reading, atomic outputs.
load helpers

@test "sha256 matches FIPS 180-4 vectors, incremental and one-shot" { unit common sha256_vectors; }
@test "rng: same seed same stream, derived streams differ, moments" { unit common rng_streams; }
@test "jsonl: file:line on a bad line, --skip-bad skips, invalid UTF-8 rejected" { unit common jsonl_reads_and_reports; }
@test "atomic file: invisible until commit, abort leaves nothing" { unit common atomic_file_commit_and_abort; }
