// Einsum's equation, parsed once for shape inference (ShapeInference+Einsum) and the lowering, which rewrites it
// into ReduceSum / Transpose / Reshape / MatMul (Lowering+Einsum.swift). ONNX Einsum (opset 12): terms of
// letters, an optional "..." per term standing for the leading or middle dimensions that the term does not
// name, and an optional "->output"; without it the output is every letter used once, in alphabetical order,
// after the ellipsis dimensions. Dimensions of a label broadcast (1 against n) as numpy's einsum does.
// Owned by the importer / shape inference.

extension ShapeRules {
    /// An einsum equation resolved against its operands' shapes: every term as a list of labels (the ellipsis
    /// expanded into labels of its own, so the lowering never sees "...").
    struct Einsum: Equatable {
        /// Labels of each operand, one per dimension.
        var operands: [[Character]]
        /// Labels of the output, one per dimension.
        var output: [Character]
        /// The size of every label (the broadcast of its sizes across operands).
        var sizes: [Character: Int]

        var outputShape: [Int] { output.map { sizes[$0]! } }
    }

    /// Parses `equation` for operands of `shapes`.
    ///
    /// - Throws: `ShapeRuleError` for a malformed equation, a term whose label count differs from its operand's
    ///   rank, labels whose sizes do not broadcast, or a label repeated within one term (a diagonal, not
    ///   supported).
    static func einsum(_ equation: String, shapes: [[Int]]) throws -> Einsum {
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw ShapeRuleError("equation '\(equation)' has more than one '->'") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == shapes.count else {
            throw ShapeRuleError("equation '\(equation)' has \(terms.count) input terms for \(shapes.count) inputs")
        }
        // Ellipsis dimensions get labels no equation can use (letters only are allowed), the last one "9".
        let ellipsisRank = try zip(terms, shapes).map { term, shape -> Int in
            let explicit = try einsumLabels(term, equation: equation)
            guard explicit.ellipsis || explicit.labels.count == shape.count else {
                throw ShapeRuleError("term '\(term)' of equation '\(equation)' names \(explicit.labels.count) "
                    + "dimensions, its input has rank \(shape.count) (\(IRText.shape(shape)))")
            }
            guard shape.count >= explicit.labels.count else {
                throw ShapeRuleError("term '\(term)' of equation '\(equation)' names more dimensions than its input "
                    + "\(IRText.shape(shape)) has")
            }
            return explicit.ellipsis ? shape.count - explicit.labels.count : 0
        }.max() ?? 0
        guard ellipsisRank <= 10 else { throw ShapeRuleError("an ellipsis of more than 10 dimensions") }
        let ellipsisLabels = (0..<ellipsisRank).map { Character(String(10 - ellipsisRank + $0)) }

        var operands: [[Character]] = []
        var sizes: [Character: Int] = [:]
        for (term, shape) in zip(terms, shapes) {
            let parsed = try einsumLabels(term, equation: equation)
            let own = shape.count - parsed.labels.count
            var labels = parsed.labels
            if parsed.ellipsis {
                labels.insert(contentsOf: ellipsisLabels.suffix(own), at: parsed.ellipsisPosition)
            }
            guard Set(labels).count == labels.count else {
                throw ShapeRuleError("term '\(term)' of equation '\(equation)' repeats a label (a diagonal): not supported")
            }
            for (label, size) in zip(labels, shape) {
                switch sizes[label] {
                case nil, 1?: sizes[label] = size
                case let known? where known == size || size == 1: break
                case let known?:
                    throw ShapeRuleError("label '\(label)' of equation '\(equation)' has sizes \(known) and \(size)")
                }
            }
            operands.append(labels)
        }

        var output: [Character]
        if sides.count == 2 {
            let parsed = try einsumLabels(sides[1], equation: equation)
            output = parsed.labels
            if parsed.ellipsis { output.insert(contentsOf: ellipsisLabels, at: parsed.ellipsisPosition) }
            guard Set(output).count == output.count else {
                throw ShapeRuleError("the output of equation '\(equation)' repeats a label")
            }
            if let unknown = output.first(where: { sizes[$0] == nil }) {
                throw ShapeRuleError("the output of equation '\(equation)' has label '\(unknown)', which no input has")
            }
            if ellipsisRank > 0 && !parsed.ellipsis {
                throw ShapeRuleError("equation '\(equation)': inputs with '...' need it in the output too")
            }
        } else {
            var counts: [Character: Int] = [:]
            for labels in operands { for l in labels where l.isLetter { counts[l, default: 0] += 1 } }
            output = ellipsisLabels + counts.filter { $0.value == 1 }.keys.sorted()
        }
        return Einsum(operands: operands, output: output, sizes: sizes)
    }

    /// The letters of one term, and where its "..." stands (if it has one).
    private static func einsumLabels(_ term: String, equation: String) throws
        -> (labels: [Character], ellipsis: Bool, ellipsisPosition: Int) {
        let parts = term.components(separatedBy: "...")
        guard parts.count <= 2 else { throw ShapeRuleError("term '\(term)' of equation '\(equation)' has two '...'") }
        let labels = Array(parts.joined())
        if let bad = labels.first(where: { !($0.isASCII && $0.isLetter) }) {
            throw ShapeRuleError("term '\(term)' of equation '\(equation)' has '\(bad)', not a letter")
        }
        return (labels, parts.count == 2, parts[0].count)
    }
}
