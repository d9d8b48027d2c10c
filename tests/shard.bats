#!/usr/bin/env bats
# Tar containers and token shards: writer, verified reader, datasets over many shards, inspect.
# The shards are also read back with plain tar, od and sha256sum, following docs/FORMATS.md.
load helpers

@test "tar: members round trip, reproducible bytes, bad names refused, abort leaves nothing" { unit shard tar_roundtrip; }
@test "tar: truncated, corrupt header, not a tar each refused naming the file" { unit shard tar_rejects_damage; }
@test "tar: 3000 members all found; a duplicate name refused by the writer and the reader" { unit shard tar_many_members; }
@test "shard u16: one shard, arithmetic reads, doc offsets, ids above 65535 refused" { unit shard shard_u16_single; }
@test "shard u32: split by tokens_per_shard, reads across shards, dir/glob/file specs" { unit shard shard_u32_multi; }
@test "shard: empty input gives one empty shard, same input same bytes, abort deletes shards" { unit shard shard_empty_and_reproducible; }
@test "shard: truncation, flipped token byte, wrong counts, bad manifest each fail clearly" { unit shard shard_rejects_damage; }
@test "shard inspect: human and JSON output, verdict on a bad shard" { unit shard shard_inspect_output; }

make_shards() {
    dir="$BATS_TEST_TMPDIR/shards"
    mkdir -p "$dir"
    SHARD_OUT="$dir/t" run "$DS_BIN/tests/test_shard" make_fixture
    [ "$status" -eq 0 ]
}

@test "shard files are plain tar: manifest.json, tokens.bin, offsets.bin" {
    make_shards
    [ "$(ls "$dir" | wc -l)" -eq 6 ]
    [ -f "$dir/t.dataset.json" ]
    for f in "$dir"/t-*.tar; do
        run tar -tf "$f"
        [ "$status" -eq 0 ]
        [ "$output" = "$(printf 'manifest.json\ntokens.bin\noffsets.bin')" ]
    done
    run tar -xOf "$dir/t-000000.tar" manifest.json
    assert_output --partial '"format": "ds-token-shard"'
    assert_output --partial '"dtype": "u16"'
}

@test "shard layout as documented: content hash, u16 LE tokens 0..N, u64 offsets" {
    make_shards
    all=""
    for f in "$dir"/t-*.tar; do
        want=$(tar -xOf "$f" manifest.json | sed -n 's/.*"content_hash": "\([0-9a-f]*\)".*/\1/p')
        got=$( (tar -xOf "$f" tokens.bin; tar -xOf "$f" offsets.bin) | sha256sum | cut -d' ' -f1)
        [ "$want" = "$got" ]
        ntok=$(tar -xOf "$f" manifest.json | sed -n 's/.*"n_tokens": \([0-9]*\).*/\1/p')
        last=$(tar -xOf "$f" offsets.bin | od -An -v -tu8 | tr -s ' ' '\n' | grep . | tail -n 1)
        first=$(tar -xOf "$f" offsets.bin | od -An -v -tu8 | tr -s ' ' '\n' | grep . | head -n 1)
        [ "$first" -eq 0 ]
        [ "$last" -eq "$ntok" ]
        all="$all $(tar -xOf "$f" tokens.bin | od -An -v -tu2 | tr -s ' \n' ' ')"
    done
    [ "$(echo $all)" = "$(echo $(seq 0 215))" ]
}

@test "shard: 1000 random byte flips and truncations are refused unless harmless" { unit shard shard_mutations; }
