// tokenizer-peer.js — Hugging Face tokenizers (the @anush008/tokenizers binding) and tiktoken as
// peers for ds-tokenize: the same documents encoded by them, for tests/tokenize.bats and
// bench/tokenizer-hf.sh. NODE_PATH must name the folder the packages are installed in.
//   node tokenizer-peer.js encode|batch TOKENIZER.json DOCS.jsonl [--add-special]
//       one JSON array of ids per document ({"text": ...} lines); batch uses encodeBatch
//   node tokenizer-peer.js decode TOKENIZER.json IDS.jsonl      one JSON string per line
//   node tokenizer-peer.js variants TOKENIZER.json VARIANTS.jsonl DOCS.jsonl DIR
//       for variant i (a patch merged into the file): DIR/i.json, DIR/i.ids (encode),
//       DIR/i.add.ids (--add-special) and DIR/i.txt (the decoded documents, concatenated)
//   node tokenizer-peer.js bench TOKENIZER.json|tiktoken:ENC DOCS.jsonl REPEAT
//       encodes every document REPEAT times; prints {"tokens", "seconds", "bytes"}
const fs = require('fs');
const [mode, tokPath, file, extra, outDir] = process.argv.slice(2);
const readLines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.length);
const lines = readLines(file);

// a deep merge of patch into base; arrays and nulls replace
function merge(base, patch) {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
    const out = Object.assign({}, base);
    for (const k of Object.keys(patch))
        out[k] = base && typeof base[k] === 'object' && base[k] !== null && !Array.isArray(base[k])
            ? merge(base[k], patch[k]) : patch[k];
    return out;
}

async function variants() {
    const { Tokenizer } = require('@anush008/tokenizers');
    const base = JSON.parse(fs.readFileSync(tokPath, 'utf8'));
    const docs = readLines(extra).map((l) => JSON.parse(l).text);
    let i = 0;
    for (const l of lines) {
        i++;
        const path = `${outDir}/${i}.json`;
        fs.writeFileSync(path, JSON.stringify(merge(base, JSON.parse(l).patch)));
        const tok = Tokenizer.fromFile(path);
        for (const add of [false, true]) {
            const ids = [];
            for (const d of docs) ids.push(Array.from((await tok.encode(d, null, { addSpecialTokens: add })).getIds()));
            fs.writeFileSync(`${outDir}/${i}${add ? '.add' : ''}.ids`, ids.map((x) => JSON.stringify(x)).join('\n') + '\n');
            if (!add) {
                let text = '';
                for (const x of ids) text += await tok.decode(x, false);
                fs.writeFileSync(`${outDir}/${i}.txt`, text);
            }
        }
    }
}

async function main() {
    if (mode === 'variants') return variants();
    if (tokPath.startsWith('tiktoken:')) {
        const { get_encoding } = require('tiktoken');
        const enc = get_encoding(tokPath.slice(9));
        const docs = lines.map((l) => JSON.parse(l).text);
        const repeat = parseInt(extra || '1', 10);
        let tokens = 0, bytes = 0;
        const t0 = process.hrtime.bigint();
        for (let r = 0; r < repeat; r++)
            for (const d of docs) {
                tokens += enc.encode_ordinary(d).length;
                bytes += Buffer.byteLength(d);
            }
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        console.log(JSON.stringify({ tokens, seconds: s, bytes }));
        return;
    }
    const { Tokenizer } = require('@anush008/tokenizers');
    const tok = Tokenizer.fromFile(tokPath);
    const out = [];
    if (mode === 'encode') {
        for (const l of lines) {
            const e = await tok.encode(JSON.parse(l).text, null, { addSpecialTokens: extra === '--add-special' });
            out.push(JSON.stringify(Array.from(e.getIds())));
        }
    } else if (mode === 'batch') {
        const docs = lines.map((l) => JSON.parse(l).text);
        const es = await tok.encodeBatch(docs, { addSpecialTokens: extra === '--add-special' });
        for (const e of es) out.push(JSON.stringify(Array.from(e.getIds())));
    } else if (mode === 'decode') {
        for (const l of lines) out.push(JSON.stringify(await tok.decode(JSON.parse(l), false)));
    } else if (mode === 'bench') {
        const docs = lines.map((l) => JSON.parse(l).text);
        const repeat = parseInt(extra || '1', 10);
        let tokens = 0, bytes = 0;
        const t0 = process.hrtime.bigint();
        for (let r = 0; r < repeat; r++) {
            const es = await tok.encodeBatch(docs, { addSpecialTokens: false });
            for (const e of es) tokens += e.getIds().length;
        }
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        for (const d of docs) bytes += Buffer.byteLength(d) * repeat;
        console.log(JSON.stringify({ tokens, seconds: s, bytes }));
        return;
    } else throw new Error('unknown mode ' + mode);
    process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}
main().catch((e) => { console.error(e.message || e); process.exit(1); });
