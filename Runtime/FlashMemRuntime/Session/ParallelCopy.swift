import Dispatch

/// Runs `body` over `0..<count` cut into pieces of `pieceSize`, the pieces spread over the cores; fewer than two
/// pieces run on the calling thread. For host work on large tensors at the run's boundary (copies and element
/// conversions of inputs and outputs), which one thread does at a fraction of what the cores give.
func forEachPiece(count: Int, pieceSize: Int, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let pieces = (count + pieceSize - 1) / pieceSize
    if pieces < 2 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: pieces) { piece in
        let start = piece * pieceSize
        body(start..<min(start + pieceSize, count))
    }
}

/// memcpy split over the cores for large copies: one thread fills host-visible memory at ~10 GB/s, eight at
/// ~35 GB/s (measured on the H100 machine, DESIGN.md). Copies under two pieces stay on the calling thread.
func parallelCopy(_ destination: UnsafeMutableRawBufferPointer, from source: UnsafeRawBufferPointer,
                  pieceBytes: Int = 4 << 20) {
    precondition(destination.count >= source.count)
    guard let to = destination.baseAddress, let from = source.baseAddress else { return }
    forEachPiece(count: source.count, pieceSize: pieceBytes) { range in
        (to + range.lowerBound).copyMemory(from: from + range.lowerBound, byteCount: range.count)
    }
}

/// Elements per piece of a parallel element-by-element conversion (float16 ↔ float32, int64 ↔ int32, bool): a
/// piece is a few hundred microseconds of one core's work, so a 6.4 M-element fp16 output (GPT-Neo's logits) is
/// converted by every core instead of taking 12.5 ms on one (the development VM, -O).
let conversionPieceElements = 1 << 18
