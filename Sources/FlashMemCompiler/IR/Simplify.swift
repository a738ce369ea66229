// Graph simplifications run between import and shape inference: Constant nodes become initializers, alias
// nodes (Identity, inference-mode Dropout) disappear, everything computable at compile time is folded and If
// nodes on a constant condition are inlined (ConstantFolding.swift, IfInlining.swift), and nodes that reach no
// output are removed. Owned by the compile-time evaluation (simplification) pass.

extension Graph {
    /// Runs, in order: `inlineConstantNodes`, `removeAliases`, `foldConstants` (which also inlines If nodes on a
    /// constant condition and turns no-op Casts into Identity nodes; those go in another `removeAliases`, and
    /// folding repeats while it adds aliases),
    /// `removeDeadNodes`; then the same on every nested graph left (If branches, Loop bodies).
    public func simplify() throws {
        try inlineConstantNodes()
        removeAliases()
        // Removing those aliases can let more fold (a Reshape of a weight behind a no-op Cast); every round removes
        // nodes, and a few rounds reach the fixed point on real models.
        var rounds = 0
        while try foldConstants(), rounds < 8 {
            removeAliases()
            rounds += 1
        }
        removeDeadNodes()
        for node in nodes {
            for nested in node.nestedGraphs { try nested.simplify() }
        }
    }

    // MARK: - Constant nodes

    /// Turns every Constant node into an initializer of its output's name. Handles the attributes value,
    /// value_float, value_floats (float32), value_int, value_ints (int64).
    ///
    /// - Throws: `CompileError` naming the node for string constants (value_string(s)) or a Constant without a
    ///   value (sparse_value is refused by the importer already).
    public func inlineConstantNodes() throws {
        var kept: [Node] = []
        kept.reserveCapacity(nodes.count)
        for node in nodes {
            guard node.opType == "Constant" else {
                kept.append(node)
                continue
            }
            let tensor = try constantValue(of: node)
            guard let output = node.outputs.first, !output.isEmpty else { continue }
            initializers[output] = tensor
            values[output] = ValueInfo(name: output, dtype: tensor.dtype, shape: tensor.shape)
        }
        nodes = kept
    }

    private func constantValue(of node: Node) throws -> ConstantTensor {
        switch (node.attributes["value"], node.attributes["value_float"], node.attributes["value_floats"],
                node.attributes["value_int"], node.attributes["value_ints"]) {
        case (.tensor(let t)?, _, _, _, _):
            return t
        case (_, .float(let v)?, _, _, _):
            return .make(dtype: .float32, shape: [], reals: [Double(v)])
        case (_, _, .floats(let v)?, _, _):
            return .make(dtype: .float32, shape: [v.count], reals: v.map(Double.init))
        case (_, _, _, .int(let v)?, _):
            return .make(dtype: .int64, shape: [], integers: [v])
        case (_, _, _, _, .ints(let v)?):
            return .make(dtype: .int64, shape: [v.count], integers: v)
        default:
            let kind = node.attributes.keys.sorted().joined(separator: ", ")
            throw CompileError(file: sourcePath, node: node.name, op: node.opType,
                               kind.isEmpty ? "Constant has no value" : "Constant with \(kind) is not supported")
        }
    }

    // MARK: - Aliases

    /// Removes Identity nodes and inference Dropout nodes (Dropout is the identity unless its training_mode input
    /// may be true; ratio is ignored) by renaming: consumers of the alias read its input instead.
    ///
    /// When the alias's output is a graph output the output name must survive: if the input is produced by a
    /// node of this graph (and is not itself a graph output), that node is renamed to write the output name
    /// directly; otherwise (input is a graph input, an initializer, another graph output or an outer-scope value)
    /// the node is kept as an Identity, which lowering must implement as a copy. A Dropout whose mask output is
    /// used is kept unchanged.
    /// A Dropout whose training_mode input is present and not a constant false, with a ratio that is not a
    /// constant 0: it drops values at random, which an inference compiler does not do (lowering refuses it).
    func isTrainingDropout(_ node: Node) -> Bool {
        guard node.opType == "Dropout", node.inputs.count > 2, !node.inputs[2].isEmpty else { return false }
        if let ratio = initializers[node.inputs[1]], ratio.floats().allSatisfy({ $0 == 0 }) { return false }
        guard let mode = initializers[node.inputs[2]] else { return true }
        return mode.ints().contains { $0 != 0 }
    }

    public func removeAliases() {
        let graphOutputs = Set(outputs.map(\.name))
        var used = graphOutputs
        for node in nodes { used.formUnion(node.referencedNames) }
        var producedByNode = Set<String>()
        for node in nodes { producedByNode.formUnion(node.outputs) }

        var index = 0
        while index < nodes.count {
            let node = nodes[index]
            let isIdentity = node.opType == "Identity" && node.inputs.count == 1 && node.outputs.count == 1
            let isDropout = node.opType == "Dropout" && !node.inputs.isEmpty && !node.outputs.isEmpty
                && (node.outputs.count == 1 || node.outputs[1].isEmpty || !used.contains(node.outputs[1]))
                && !isTrainingDropout(node)
            guard isIdentity || isDropout, !node.inputs[0].isEmpty, !node.outputs[0].isEmpty else {
                index += 1
                continue
            }
            let source = node.inputs[0], alias = node.outputs[0]
            if !graphOutputs.contains(alias) {
                nodes.remove(at: index)
                renameUses(of: alias, to: source)
                values[alias] = nil
            } else if producedByNode.contains(source) && !graphOutputs.contains(source) {
                nodes.remove(at: index)
                for i in nodes.indices {
                    for j in nodes[i].outputs.indices where nodes[i].outputs[j] == source { nodes[i].outputs[j] = alias }
                }
                renameUses(of: source, to: alias)
                if values[alias]?.shape == nil, var info = values[source] {
                    info.name = alias
                    values[alias] = info
                }
                values[source] = nil
            } else {
                nodes[index] = Node(name: node.name, opType: "Identity", inputs: [source], outputs: [alias])
                index += 1
            }
        }
    }

    // MARK: - Dead nodes

    /// Removes nodes none of whose outputs reaches a graph output, then initializers nothing reads and `values`
    /// entries of names that no longer exist. Graph inputs stay (they are the model's interface).
    public func removeDeadNodes() {
        var live = Set(outputs.map(\.name))
        var keep = [Bool](repeating: false, count: nodes.count)
        for i in nodes.indices.reversed() where nodes[i].outputs.contains(where: live.contains) {
            keep[i] = true
            live.formUnion(nodes[i].referencedNames)
        }
        nodes = nodes.indices.filter { keep[$0] }.map { nodes[$0] }
        initializers = initializers.filter { live.contains($0.key) }

        var existing = live
        existing.formUnion(inputs.map(\.name))
        for node in nodes { existing.formUnion(node.outputs) }
        values = values.filter { existing.contains($0.key) }
    }
}
