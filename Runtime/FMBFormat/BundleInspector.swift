// The human-readable summary of a bundle that `fmc inspect` (and `fmrun --inspect`) print. Text only; no
// decisions are made here.

/// Describes bundles as aligned text tables. Stateless and thread-safe.
public enum BundleInspector {
    /// The full description of a loaded bundle: header, I/O, sections, kernels, program, memory, images,
    /// chunks and schedule. Sections are listed when the bundle came from a file.
    public static func describe(_ loaded: LoadedBundle) -> String {
        let layout = loaded.file.flatMap { BundleValidator.checkFile($0.bytes).layout }
        return describe(loaded.bundle, layout: layout, path: loaded.path)
    }

    /// The description of a bundle and (when known) its file layout.
    public static func describe(_ b: FMBundle, layout: FileLayout?, path: String) -> String {
        var out: [String] = []
        out.append("FlashMem bundle \(path)")
        var head: [[String]] = []
        if let layout {
            head.append(["format", "\(layout.major).\(layout.minor)  (flags 0x\(String(layout.flags, radix: 16)), "
                         + "\(bytes(layout.fileSize)))"])
        } else {
            head.append(["format", "in memory (no file layout)"])
        }
        head.append(["producer", b.meta.producer])
        head.append(["model", b.meta.modelName])
        out += table(head, indent: 2)

        for (title, ios) in [("Inputs", b.meta.inputs), ("Outputs", b.meta.outputs)] {
            out.append("")
            out.append("\(title) (\(ios.count))")
            var rows = [["name", "type", "shape", "tensor"]]
            for io in ios {
                let tensor = Int(io.tensor) < b.tensors.count ? " '\(b.tensors[Int(io.tensor)].name)'" : ""
                rows.append([io.name, "\(io.elementType)", "[" + io.shape.map(String.init).joined(separator: ", ") + "]",
                             "\(io.tensor)\(tensor)"])
            }
            out += table(rows, indent: 2)
        }

        if let layout {
            out.append("")
            out.append("Sections (\(layout.sections.count))")
            var rows = [["kind", "offset", "size", "checksum"]]
            for s in layout.sections {
                rows.append([s.kind.description, "\(s.offset)", "\(s.size)", "0x" + hex(s.checksum)])
            }
            out += table(rows, indent: 2, right: [1, 2])
        }

        out.append("")
        let spirvBytes = b.spirv.reduce(0) { $0 + $1.count * 4 }
        out.append("Kernels (\(b.kernels.count); \(b.spirv.count) SPIR-V modules, \(bytes(UInt64(spirvBytes))))")
        var dispatches = [Int](repeating: 0, count: b.kernels.count)
        for step in b.program where Int(step.kernel) < dispatches.count { dispatches[Int(step.kernel)] += 1 }
        var krows = [["#", "name", "spirv", "size", "bindings", "workgroup", "push", "spec", "dispatches"]]
        for (k, kernel) in b.kernels.enumerated() {
            let module = Int(kernel.spirv) < b.spirv.count ? bytes(UInt64(b.spirv[Int(kernel.spirv)].count * 4)) : "?"
            let bindings = kernel.bindings.map { $0 == .storageBuffer ? "B" : "I" }.joined()
            krows.append(["\(k)", kernel.name, "\(kernel.spirv)", module, bindings.isEmpty ? "-" : bindings,
                          kernel.workgroupSize.map(String.init).joined(separator: "×"), "\(kernel.pushConstantSize)",
                          kernel.specConstants.isEmpty ? "-" : kernel.specConstants.map(String.init).joined(separator: ","),
                          "\(dispatches[k])"])
        }
        out += table(krows, indent: 2, right: [0, 2, 3, 6, 8])
        out.append("  bindings: B storage buffer (arena tensor), I storage image (weight image)")

        out.append("")
        let imageBindings = b.program.reduce(0) { n, s in n + s.bindings.filter { if case .image = $0 { true } else { false } }.count }
        out.append("Program: \(b.program.count) steps, \(imageBindings) weight-image bindings")
        out.append("  " + copySummary(b))
        out += predicateSummary(b)

        out.append("")
        let constants = b.tensors.compactMap(\.constant)
        out.append("Memory")
        out += table([
            ["arena", bytes(b.meta.arenaSize)],
            ["tensors", "\(b.tensors.count) (\(constants.count) resident constants, "
             + "\(bytes(constants.reduce(0) { $0 + $1.size })))"],
            ["requirements", requirementsLine(b.meta.requirements)],
        ], indent: 2)

        out.append("")
        let imageBytes = b.images.reduce(UInt64(0)) { $0 &+ $1.byteSize }
        out.append("Images (\(b.images.count), \(bytes(imageBytes)))")
        var irows = [["#", "name", "format", "extent", "bytes", "chunks"]]
        var chunksPerImage = [Int](repeating: 0, count: b.images.count)
        for c in b.chunks where Int(c.image) < chunksPerImage.count { chunksPerImage[Int(c.image)] += 1 }
        for (i, image) in b.images.enumerated() {
            irows.append(["\(i)", image.name, "\(image.format)", "\(image.width)×\(image.height)×\(image.layers)",
                          bytes(image.byteSize), "\(chunksPerImage[i])"])
        }
        out += table(irows, indent: 2, right: [0, 4, 5])
        out += pieceSummary(b)

        out.append("")
        out += chunkSummary(b.chunks)
        out.append("")
        out += scheduleSummary(b)
        return out.joined(separator: "\n") + "\n"
    }

    /// One row per step: its kernel, workgroups, the time the load plan assumed for it (`Schedule.stepSeconds`: the
    /// target's estimate or a profile's measurement), bindings (arena tensors by name, weight images by name) and the
    /// ONNX nodes it computes (`fmc inspect --steps`), for finding which nodes became copies or extra steps.
    public static func stepTable(_ b: FMBundle) -> String {
        var rows = [["#", "kernel", "groups", "planned µs", "reads / writes", "nodes"]]
        for (i, step) in b.program.enumerated() {
            let kernel = Int(step.kernel) < b.kernels.count ? b.kernels[Int(step.kernel)].name : "?\(step.kernel)"
            let bindings = step.bindings.map { binding -> String in
                switch binding {
                case .tensor(let t): return Int(t) < b.tensors.count ? b.tensors[Int(t)].name : "tensor \(t)"
                case .image(let m): return Int(m) < b.images.count ? "image " + b.images[Int(m)].name : "image \(m)"
                }
            }
            let planned = i < b.schedule.stepSeconds.count ? format1(b.schedule.stepSeconds[i] * 1e6) : "?"
            rows.append(["\(i)", kernelStem(kernel) + (isCopyKernel(kernel) ? " (copy)" : ""),
                         step.groups.map(String.init).joined(separator: "×"), planned, bindings.joined(separator: ", "),
                         step.label])
        }
        return (["Steps (\(b.program.count))"] + table(rows, indent: 2, right: [0, 3])).joined(separator: "\n") + "\n"
    }

    // MARK: - Data movement

    /// Stems of the kernels that only move data (no arithmetic): what issue 3's "layout without transformations"
    /// wants to see disappear. A kernel name is `stem<defines>[spec constants]` (Lowering's `kernel(_:)`).
    public static let copyKernelStems = ["copy", "gather", "pad", "transpose", "concat", "slice", "split", "tile",
                                         "expand"]

    /// The stem of a kernel's bundle name `stem<defines>[spec constants]` (Lowering's `kernel(_:)`).
    static func kernelStem(_ name: String) -> String {
        String(name.prefix { $0 != "<" && $0 != "[" })
    }

    /// Whether a kernel (by its bundle name) is a pure data-movement copy: its stem is one of `copyKernelStems`
    /// or starts with one followed by "_" (copy_strided, gather_image).
    public static func isCopyKernel(_ name: String) -> Bool {
        let stem = kernelStem(name)
        // Whole words: "splitk_reduce" (a matmul's reduction) is not "split".
        return copyKernelStems.contains { stem == $0 || stem.hasPrefix($0 + "_") }
    }

    /// "copies: K steps (kernel: n, ...)", the copy steps of the program by kernel stem.
    static func copySummary(_ b: FMBundle) -> String {
        var perStem: [String: Int] = [:]
        for step in b.program where Int(step.kernel) < b.kernels.count {
            let name = b.kernels[Int(step.kernel)].name
            guard isCopyKernel(name) else { continue }
            perStem[kernelStem(name), default: 0] += 1
        }
        let total = perStem.values.reduce(0, +)
        let parts = perStem.keys.sorted().map { "\($0) \(perStem[$0]!)" }
        return "copies: \(total) step\(total == 1 ? "" : "s")" + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
    }

    /// The predicated steps (If branches decided at run time), one row per run of consecutive steps with the
    /// same condition: "steps 4–9 run when 'cond' ≠ 0 (/If_0: then_branch)".
    static func predicateSummary(_ b: FMBundle) -> [String] {
        let predicated = b.program.indices.filter { b.program[$0].predicate != nil }
        guard !predicated.isEmpty else { return [] }
        var rows = [["steps", "runs when", "first step"]]
        var start = predicated[0], previous = predicated[0]
        func flush() {
            let p = b.program[start].predicate!
            let name = Int(p.tensor) < b.tensors.count ? "'\(b.tensors[Int(p.tensor)].name)'" : "tensor \(p.tensor)"
            rows.append([start == previous ? "\(start)" : "\(start)–\(previous)",
                         "\(name) \(p.sense == .nonZero ? "≠ 0" : "= 0")", b.program[start].label])
        }
        for k in predicated.dropFirst() {
            if k == previous + 1, b.program[k].predicate == b.program[previous].predicate {
                previous = k
                continue
            }
            flush()
            start = k
            previous = k
        }
        flush()
        return ["  predicated: \(predicated.count) step\(predicated.count == 1 ? "" : "s") run only when their "
                + "condition holds (VK_EXT_conditional_rendering)"] + table(rows, indent: 4)
    }

    // MARK: - Parts

    static func chunkSummary(_ chunks: [Chunk]) -> [String] {
        let raw = chunks.reduce(UInt64(0)) { $0 &+ $1.rawSize }
        let stored = chunks.reduce(UInt64(0)) { $0 &+ $1.payload.size }
        var lines = ["Chunks (\(chunks.count))"]
        guard !chunks.isEmpty else { return lines }
        let zstd = chunks.filter { $0.codec == .zstd }.count
        let ratio = raw > 0 ? format1(Double(stored) / Double(raw) * 100) + "%" : "-"
        lines += table([
            ["raw", bytes(raw)],
            ["stored", "\(bytes(stored)) (\(ratio) of raw)"],
            ["codecs", "none \(chunks.count - zstd), zstd \(zstd)"],
            ["raw size", "min \(bytes(chunks.map(\.rawSize).min()!)), max \(bytes(chunks.map(\.rawSize).max()!)), "
             + "mean \(bytes(raw / UInt64(chunks.count)))"],
        ], indent: 2)
        return lines
    }

    /// Weights fmc cut into pieces (images named `weight[p/P]`), each read by its own step so no weight must be
    /// resident whole: what kernel rewriting changed, and why.
    static func pieceSummary(_ b: FMBundle) -> [String] {
        var pieces: [String: (count: Int, bytes: UInt64, largest: UInt64, label: String)] = [:]
        var order: [String] = []
        var readers = [String](repeating: "", count: b.images.count)
        for step in b.program {
            for case .image(let i) in step.bindings where Int(i) < readers.count && readers[Int(i)].isEmpty {
                readers[Int(i)] = step.label
            }
        }
        for (i, image) in b.images.enumerated() {
            guard image.name.hasSuffix("]"), let open = image.name.lastIndex(of: "["),
                  image.name[open...].contains("/") else { continue }
            let base = String(image.name[..<open])
            if pieces[base] == nil { order.append(base) }
            var entry = pieces[base] ?? (0, 0, 0, readers[i])
            entry.count += 1
            entry.bytes += image.byteSize
            entry.largest = max(entry.largest, image.byteSize)
            pieces[base] = entry
        }
        guard !order.isEmpty else { return [] }
        var rows = [["weight", "pieces", "bytes", "largest", "read by"]]
        for base in order {
            let p = pieces[base]!
            rows.append([base, "\(p.count)", bytes(p.bytes), bytes(p.largest), p.label])
        }
        return ["", "Weights cut into pieces (\(order.count)): each piece is its own image, read by its own step, so "
                + "no weight must be resident whole (fmc compile --max-image-size)"] + table(rows, indent: 2, right: [1, 2, 3])
    }

    static func scheduleSummary(_ b: FMBundle) -> [String] {
        let s = b.schedule
        let compute = s.stepSeconds.reduce(0, +)
        let streamed = b.streamedBytes
        let transfer = s.bandwidth > 0 ? Double(streamed) / s.bandwidth : 0
        let gap = s.lowerBoundSeconds > 0 ? (s.predictedSeconds - s.lowerBoundSeconds) / s.lowerBoundSeconds * 100 : 0
        var rows: [[String]] = [
            ["budget", s.budgetBytes == 0 ? "unbounded" : bytes(s.budgetBytes)],
            ["bandwidth", s.bandwidth > 0 ? "\(format1(s.bandwidth / 1e9)) GB/s" : "unknown"],
            ["compute", "\(seconds(compute)) (Σ step times)"],
            ["transfer", "\(seconds(transfer)) (\(bytes(streamed)) streamed per run at the bandwidth)"],
            ["predicted", seconds(s.predictedSeconds)],
            ["lower bound", "\(seconds(s.lowerBoundSeconds))  gap \(format1(gap))%"],
        ]
        if s.order.count == b.chunks.count, s.issueStep.count == b.chunks.count, s.firstUse.count == b.images.count,
           (s.waitStep?.count ?? b.images.count) == b.images.count {
            let n = b.streamingSubmissions
            let waits = s.waitStep.map { w in b.images.indices.filter { w[$0] != s.firstUse[$0] }.count } ?? 0
            rows.append(["submissions", "first run \(n.first), warm run \(n.warm) when streamed"
                         + (waits > 0 ? " (\(waits) images waited for before their first use)" : "")])
        }
        if let p = b.placement {
            let resident = p.slots.filter(\.resident).count
            let total = b.meta.arenaSize + p.weightSpaceBytes
            let fits = s.budgetBytes == 0 ? "" : (total <= s.budgetBytes ? " (within budget)" : " (OVER budget)")
            rows.append(["plan", "\(p.method); \(resident) of \(p.slots.count) images resident (\(bytes(p.residentBytes)))"])
            rows.append(["weight space", "\(bytes(p.weightSpaceBytes)) in segments of \(bytes(p.segmentBytes)); "
                         + "arena + weights \(bytes(total))\(fits)"])
        } else if let peak = peakWeightBytes(b) {
            rows.append(["peak weights", "\(bytes(peak)) est. (no placement: format 1.\(b.hasPredicatedSteps ? 1 : 0))"])
        }
        return ["Schedule"] + table(rows, indent: 2)
    }

    /// The most image bytes live at once by the images' windows (`FMBundle.imageWindows`), before fragmentation.
    /// Nil when the schedule arrays do not fit.
    static func peakWeightBytes(_ b: FMBundle) -> UInt64? {
        let s = b.schedule
        guard s.firstUse.count == b.images.count, s.lastUse.count == b.images.count,
              s.issueStep.count == b.chunks.count, !b.program.isEmpty else { return nil }
        return SlotPlacement.peakLiveBytes(sizes: b.images.map(\.byteSize), resident: b.images.map { _ in false },
                                           windows: b.imageWindows(), stepCount: b.program.count)
    }

    static func requirementsLine(_ r: DeviceRequirements) -> String {
        "push \(r.pushConstantBytes) B, buffer range \(bytes(r.storageBufferRange)), image 2D \(r.imageDimension2D), "
            + "layers \(r.imageArrayLayers), invocations \(r.workgroupInvocations), shared \(bytes(UInt64(r.sharedMemoryBytes)))"
            + (r.features.isEmpty ? "" : ", features \(r.features)")
    }

    // MARK: - Formatting

    /// Rows as columns padded to their widest cell (right-aligned for the `right` columns).
    static func table(_ rows: [[String]], indent: Int, right: Set<Int> = []) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (c, cell) in row.enumerated() { widths[c] = max(widths[c], cell.count) } }
        let pad = String(repeating: " ", count: indent)
        return rows.map { row in
            var line = pad
            for (c, cell) in row.enumerated() {
                let fill = String(repeating: " ", count: widths[c] - cell.count)
                line += right.contains(c) ? fill + cell : cell + (c == row.count - 1 ? "" : fill)
                if c < row.count - 1 { line += "  " }
            }
            return line
        }
    }

    /// Bytes with a binary unit: "512 B", "1.5 KiB", "12.0 MiB".
    public static func bytes(_ n: UInt64) -> String {
        if n < 1024 { return "\(n) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(n) / 1024, unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(format1(value)) \(units[unit])"
    }

    static func seconds(_ s: Double) -> String {
        if s == 0 { return "0 s" }
        if s < 1e-6 { return "\(format1(s * 1e9)) ns" }
        if s < 1e-3 { return "\(format1(s * 1e6)) µs" }
        if s < 1 { return "\(format1(s * 1e3)) ms" }
        return "\(format1(s)) s"
    }

    /// One decimal, without Foundation's String(format:).
    static func format1(_ v: Double) -> String {
        // Past 2^53 tenths the digits are noise anyway, and past 2^63 Int64(_:) would trap (a validated bundle may
        // hold any finite time, e.g. 1e300 s: found by Fuzz/).
        guard v.isFinite, abs(v) < 1e15 else { return "\(v)" }
        let tenths = (v * 10).rounded()
        let whole = Int64(tenths / 10)
        let frac = Int64(abs(tenths.truncatingRemainder(dividingBy: 10)))
        return (tenths < 0 && whole == 0 ? "-" : "") + "\(whole).\(frac)"
    }
}
