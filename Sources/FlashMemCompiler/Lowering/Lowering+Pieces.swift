// Kernel rewriting under a bound on image size (DESIGN.md, "The schedule problem"): a weight whose one image
// would exceed `maxImageBytes` is cut into pieces along an axis its kernel can split without a reduction —
// Gemm / MatMul B' along output columns, a Gather table along the gathered axis, a Conv weight along output
// channels — each piece its own image ("<weight>[p/P]") read by its own step. No piece is larger than the
// limit, and the step of the first piece can run while later pieces still stream. Rules ask `pieceRanges`
// how to cut, then pack and dispatch one piece per range.

import FMBFormat

extension LoweringContext {
    /// Bytes of a weight image holding `texels` texels of `format` (default: this lowering's precision's; its padded
    /// extent, what the bundle stores and the pool holds).
    func imageBytes(texels: Int, format: ImageFormat? = nil) -> Int {
        let (width, height, layers) = ImageLayout.extent(texels: texels)
        return width * height * layers * (format ?? precision.imageFormat).texelBytes
    }

    /// How to cut `units` units of a weight (texel blocks of columns or channels, table rows) into consecutive
    /// ranges so that every range's image (`texels(range)` texels) fits `maxImageBytes`: the whole range when it
    /// fits or there is no limit, else the fewest equal ranges whose length is a multiple of one of
    /// `granules` (tried in order: a kernel's tile first, then smaller) that all fit. Records the cut in
    /// `program.splits`. Throws, naming the node and weight, when even one granule is too large.
    func pieceRanges(_ n: LoweringNode, weight: String, units: Int, granules: [Int], axis: WeightSplit.Axis,
                     format: ImageFormat? = nil, texels: (Range<Int>) -> Int) throws -> [Range<Int>] {
        let whole = 0..<max(units, 1)
        let wholeBytes = imageBytes(texels: texels(whole), format: format)
        guard let limit = maxImageBytes, wholeBytes > limit, units > 1 else {
            if let limit = maxImageBytes, wholeBytes > limit {
                throw error(n, "the weight '\(weight)' needs a \(wholeBytes)-byte image and cannot be cut along "
                            + "\(axis.rawValue) (one unit); maxImageBytes is \(limit)")
            }
            return [whole]
        }
        for granule in granules where granule >= 1 && granule < units
            && imageBytes(texels: texels(0..<granule), format: format) <= limit {
            // From the fewest pieces the bytes allow, more until every piece fits or pieces are one granule long.
            var pieces = max(2, LoweringMath.ceilDiv(wholeBytes, limit))
            var lastLength = Int.max
            while true {
                let length = LoweringMath.ceilDiv(LoweringMath.ceilDiv(units, pieces), granule) * granule
                if length < lastLength {
                    lastLength = length
                    let ranges = stride(from: 0, to: units, by: length).map { $0..<min(units, $0 + length) }
                    let largest = ranges.map { imageBytes(texels: texels($0), format: format) }.max() ?? 0
                    if largest <= limit {
                        if ranges.count > 1 {
                            program.splits.append(WeightSplit(node: n.label, weight: weight, originalBytes: wholeBytes,
                                                              pieces: ranges.count, axis: axis,
                                                              largestPieceBytes: largest, maxImageBytes: limit))
                        }
                        return ranges
                    }
                }
                if length <= granule { break }
                pieces += 1
            }
        }
        let smallest = imageBytes(texels: texels(0..<1), format: format)
        throw error(n, "the weight '\(weight)' (\(wholeBytes) bytes as one image) cannot be cut to fit maxImageBytes "
                    + "\(limit): one unit along \(axis.rawValue) alone needs a \(smallest)-byte image")
    }

    /// The image name of piece `p` (from 0) of `count`: the weight's own name when it is not cut.
    func pieceName(_ weight: String, _ p: Int, of count: Int) -> String {
        count == 1 ? weight : "\(weight)[\(p + 1)/\(count)]"
    }
}
