// The one place where weights are re-laid-out into the texel order their kernels read ("pre-transformed
// texture tiles"). Each function returns 4 floats per texel; ImageLayout.image encodes them. The layouts
// are drawn in the kernels' header comments (Shaders/conv2d.comp, Shaders/gemm.comp): change both together.

public enum WeightPacking {
    /// Geometry of a Conv weight [OC, ICG, KH, KW] split into `groups`.
    public struct ConvGeometry: Equatable, Sendable {
        public var outChannels: Int
        public var inChannelsPerGroup: Int
        public var kernelH: Int
        public var kernelW: Int
        public var groups: Int

        public init(outChannels: Int, inChannelsPerGroup: Int, kernelH: Int, kernelW: Int, groups: Int) {
            self.outChannels = outChannels
            self.inChannelsPerGroup = inChannelsPerGroup
            self.kernelH = kernelH
            self.kernelW = kernelW
            self.groups = groups
        }

        public var outChannelsPerGroup: Int { outChannels / groups }
        /// Texel blocks of 4 output channels per group (the last one zero-padded).
        public var blocksPerGroup: Int { LoweringMath.ceilDiv(outChannelsPerGroup, 4) }
        public var blocks: Int { groups * blocksPerGroup }
        public var weightTexels: Int { blocks * inChannelsPerGroup * kernelH * kernelW }
        /// Weight texels followed by one bias texel per block.
        public var texels: Int { weightTexels + blocks }

        /// The texel holding W[oc, ic, kh, kw] and its lane (conv2d.comp's read order).
        public func texel(oc: Int, ic: Int, kh: Int, kw: Int) -> (texel: Int, lane: Int) {
            let g = oc / outChannelsPerGroup
            let ocInGroup = oc % outChannelsPerGroup
            let block = g * blocksPerGroup + ocInGroup / 4
            return (((block * inChannelsPerGroup + ic) * kernelH + kh) * kernelW + kw, ocInGroup % 4)
        }

        /// The texel holding bias[oc] and its lane.
        public func biasTexel(oc: Int) -> (texel: Int, lane: Int) {
            let g = oc / outChannelsPerGroup
            let ocInGroup = oc % outChannelsPerGroup
            return (weightTexels + g * blocksPerGroup + ocInGroup / 4, ocInGroup % 4)
        }
    }

    /// Conv weights (row-major [OC, ICG, KH, KW]) and bias ([OC], or nil for zeros) in conv2d.comp's order.
    public static func conv2d(weight: [Float], bias: [Float]?, geometry c: ConvGeometry) -> [Float] {
        precondition(weight.count == c.outChannels * c.inChannelsPerGroup * c.kernelH * c.kernelW,
                     "conv weight size does not match its geometry")
        var out = [Float](repeating: 0, count: c.texels * 4)
        let taps = c.kernelH * c.kernelW
        let ocpg = c.outChannelsPerGroup
        out.withUnsafeMutableBufferPointer { out in
            weight.withUnsafeBufferPointer { w in
                for oc in 0..<c.outChannels {
                    let g = oc / ocpg
                    let ocInGroup = oc % ocpg
                    let block = g * c.blocksPerGroup + ocInGroup / 4
                    let lane = ocInGroup % 4
                    for ic in 0..<c.inChannelsPerGroup {
                        // Taps of one (oc, ic) are consecutive both in the source and in texels.
                        let source = (oc * c.inChannelsPerGroup + ic) * taps
                        let texel = (block * c.inChannelsPerGroup + ic) * taps
                        for tap in 0..<taps {
                            out[(texel + tap) * 4 + lane] = w[source + tap]
                        }
                    }
                }
            }
            if let bias {
                for oc in 0..<c.outChannels {
                    let (texel, lane) = c.biasTexel(oc: oc)
                    out[texel * 4 + lane] = bias[oc]
                }
            }
        }
        return out
    }

    /// Geometry of a constant matmul operand B' [K, N] (after transB).
    public struct GemmGeometry: Equatable, Sendable {
        public var k: Int
        public var n: Int
        /// Blocks per row of the packed values round up to a multiple of it: 2 for a half8 image (whose texels
        /// hold two blocks, so that a row starts on a texel), else 1.
        public var rowAlignment: Int

        public init(k: Int, n: Int, rowAlignment: Int = 1) {
            self.k = k
            self.n = n
            self.rowAlignment = rowAlignment
        }

        /// Blocks of 4 output columns (the last one zero-padded); the kernels' NB.
        public var blocks: Int { LoweringMath.ceilDiv(n, 4) }
        /// Blocks per packed row: `blocks`, zero-padded to a multiple of `rowAlignment`.
        public var rowBlocks: Int { LoweringMath.ceilDiv(blocks, rowAlignment) * rowAlignment }
        /// Packed blocks of weights (4 values each; a texel of rgba32f / rgba16f images).
        public var weightTexels: Int { k * rowBlocks }
        /// Weight blocks followed by one row of bias blocks.
        public var texels: Int { weightTexels + rowBlocks }

        /// The block holding B'[k, n] and its lane (gemm.comp's read order: [k][nBlock]).
        public func texel(k: Int, n: Int) -> (texel: Int, lane: Int) {
            (k * rowBlocks + n / 4, n % 4)
        }

        public func biasTexel(n: Int) -> (texel: Int, lane: Int) {
            (weightTexels + n / 4, n % 4)
        }
    }

    /// B (row-major [K, N], or [N, K] when `transB`) scaled by `alpha`, then `bias` ([N] or nil) scaled by
    /// `beta`, in gemm.comp's order. With `columnOffset` / `totalColumns`, the column piece B'[:, offset ..<
    /// offset + g.n] of a B' with `totalColumns` columns (and the same range of `bias`), as its own image.
    public static func gemm(b: [Float], transB: Bool, geometry g: GemmGeometry, alpha: Float = 1,
                            bias: [Float]? = nil, beta: Float = 1, columnOffset n0: Int = 0,
                            totalColumns: Int? = nil) -> [Float] {
        let total = totalColumns ?? g.n
        precondition(b.count == g.k * total && n0 + g.n <= total, "gemm weight size does not match its geometry")
        var out = [Float](repeating: 0, count: g.texels * 4)
        let blocks = g.rowBlocks
        out.withUnsafeMutableBufferPointer { out in
            b.withUnsafeBufferPointer { b in
                for k in 0..<g.k {
                    let row = k * blocks * 4
                    for n in 0..<g.n {
                        let value = transB ? b[(n0 + n) * g.k + k] : b[k * total + n0 + n]
                        // Texel k·NB + n/4, lane n%4 = component k·NB·4 + n.
                        out[row + n] = alpha * value
                    }
                }
            }
            if let bias {
                let base = g.weightTexels * 4
                for n in 0..<g.n {
                    out[base + n] = beta * bias[n0 + n]
                }
            }
        }
        return out
    }
}
