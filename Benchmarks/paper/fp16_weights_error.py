"""How far GPT-Neo's logits move when only its weights are rounded to fp16 (issue 9: is the fp16 error ours?).

  fp16_weights_error.py HIDDEN LAYERS HEADS [NAME.ref.npz [OURS.npy]]
                                                 e.g. 2048 24 16 (GPT-Neo-1.3B), 2560 32 20 (2.7B), 768 12 12 (125M)

Builds the corpus model in torch on the CPU exactly as make_corpus.py does (same seed, same input ids) and prints
the relative error of the logits against the fp32 forward for
  w16        every weight rounded to fp16, all arithmetic in fp32: the least error any fp16 engine can have;
  w16 + a16  also every Linear's input rounded to fp16 (fp32 accumulation): what gemm_cm.comp computes.
With the corpus's reference (onnxruntime's fp32 output) it also prints how far torch's fp32 logits are from it (the
spread between two fp32 implementations), and with our fp32 output (fmrun's logits.npy) ours from torch's.
The corpus scripts are found at $CORPUS_SCRIPTS or ../../../shared/corpus. Needs about 4 bytes per parameter of RAM.
"""
import os
import sys
import time

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "corpus")
sys.path.insert(0, os.environ.get("CORPUS_SCRIPTS", here))
import numpy as np  # noqa: E402
import make_corpus as mc  # noqa: E402


def main(hidden, layers, heads, ref_path=None, ours_path=None):
    torch = mc.torch_setup()
    torch.manual_seed(mc.SEED)
    with torch.no_grad():
        lm, cfg = mc._gpt_neo(hidden, layers, heads)()
        lm = lm.eval()
    ids = torch.from_numpy(mc._rng().integers(0, cfg.vocab_size, size=(1, 128), dtype=np.int64))
    if ref_path:
        z = np.load(ref_path)
        assert np.array_equal(z["in.0"], ids.numpy()), "the reference was made for other input ids"

    def logits():
        with torch.no_grad():
            return lm(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits.double()

    t = time.perf_counter()
    ref = logits()
    print(f"GPT-Neo {hidden}/{layers}/{heads}: fp32 forward {time.perf_counter() - t:.1f} s")

    def rel(x):
        return float((x - ref).norm() / ref.norm())

    if ref_path:
        ort = torch.from_numpy(z["out.0"]).double()
        print(f"torch fp32 against onnxruntime fp32 (the reference): {float((ref - ort).norm() / ort.norm()):.3e}")
        if ours_path:
            ours = torch.from_numpy(np.load(ours_path)).double()
            print(f"ours against torch fp32: {rel(ours):.3e}; against onnxruntime: {float((ours - ort).norm() / ort.norm()):.3e}")

    with torch.no_grad():
        for p in lm.parameters():
            p.copy_(p.half().float())
    print(f"w16 (weights rounded to fp16, fp32 arithmetic): {rel(logits()):.3e}")
    hooks = [m.register_forward_pre_hook(lambda mod, a: tuple(x.half().float() if x.is_floating_point() else x for x in a))
             for m in lm.modules() if isinstance(m, torch.nn.Linear)]
    print(f"w16 + a16 (and every Linear's input rounded to fp16): {rel(logits()):.3e}")
    for h in hooks:
        h.remove()


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5, 6):
        print(__doc__)
        sys.exit(2)
    main(*map(int, sys.argv[1:4]), *sys.argv[4:])
