// If on a condition known at compile time: the taken branch's nodes replace the If, the other branch is dropped.
// Called by `foldConstants` (ConstantFolding.swift), which then folds the inlined nodes in the same pass. An If
// whose condition stays dynamic keeps both branches; lowering splices them with `isolatedBranch` and predicates
// their steps (Lowering+ControlFlow.swift).
//
// A branch is a graph without inputs whose nodes may read values of the enclosing graphs (outer scope). ONNX
// names are SSA across scopes, but the sibling branch and careless exporters may reuse names, so every name the
// branch defines that already exists here is renamed before the splice.

extension Graph {
    /// The branch an If takes when its condition is an initializer (one element; non-zero = then_branch); nil
    /// when the condition is computed at run time or the branch attribute is missing.
    func takenBranch(of node: Node) -> Graph? {
        guard node.opType == "If", let name = node.inputs.first, !name.isEmpty,
              let condition = initializers[name], condition.elementCount == 1 else { return nil }
        let taken = condition.dtype.isFloat ? condition.reals()[0] != 0 : condition.ints()[0] != 0
        guard case .graph(let branch)? = node.attributes[taken ? "then_branch" : "else_branch"],
              branch.outputs.count == node.outputs.count else { return nil }
        return branch
    }

    /// Moves the branch's constants into this graph's initializers and returns its nodes, renamed so that they
    /// write the If's outputs: the producer of a branch output is renamed to write the If output; a branch output
    /// that is an outer value, a constant, or a second use of one value becomes an Identity (which folding or
    /// `removeAliases` removes again).
    ///
    /// - Parameters:
    ///   - pending: nodes of this graph not yet visited by the pass; `kept`: nodes already kept. Their outputs,
    ///     with inputs, initializers and known values, are the names the branch must not redefine.
    /// - Throws: `CompileError` for an unusable Constant node of the branch.
    func inlineBranch(_ original: Graph, of node: Node, pending: ArraySlice<Node>, kept: [Node]) throws -> [Node] {
        var existing = Set(initializers.keys).union(values.keys).union(inputs.map(\.name)).union(node.outputs)
        for other in kept { existing.formUnion(other.outputs) }
        for other in pending { existing.formUnion(other.outputs) }
        let branch = try Graph.isolatedBranch(original, of: node, avoiding: existing)

        // Write the If's outputs.
        var extra: [Node] = []
        for (k, target) in node.outputs.enumerated() where !target.isEmpty {
            let source = branch.outputs[k].name
            let producer = branch.nodes.firstIndex { $0.outputs.contains(source) }
            let usedAgain = branch.outputs[..<k].contains { $0.name == source }
            if producer != nil, !usedAgain {
                branch.renameDefinition(of: source, to: target)
            } else {
                extra.append(Node(name: "\(node.name)/\(target)", opType: "Identity", inputs: [source], outputs: [target]))
            }
        }

        for (name, tensor) in branch.initializers {
            initializers[name] = tensor
            values[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
        }
        // Declared types of the branch's values help the lenient inference where it cannot infer.
        for (name, info) in branch.values where values[name] == nil && !name.isEmpty {
            values[name] = info
        }
        return branch.nodes + extra
    }

    /// A copy of `original` (an If branch of `node`) with its Constant nodes made initializers and every name it
    /// defines (initializers, node outputs) that is in `taken` renamed to a fresh one, reads included; the names
    /// it reads from the enclosing graphs are kept. The copy's nodes can then be spliced into the enclosing graph
    /// (compile-time If: `inlineBranch`; run-time If: Lowering+ControlFlow.swift). `original` is not modified: it
    /// may be shared (hand-built graphs).
    ///
    /// - Throws: `CompileError` for an unusable Constant node of the branch.
    static func isolatedBranch(_ original: Graph, of node: Node, avoiding taken: Set<String>) throws -> Graph {
        let branch = Graph(name: original.name, nodes: original.nodes, inputs: original.inputs,
                           outputs: original.outputs, initializers: original.initializers, values: original.values,
                           opset: original.opset, sourcePath: original.sourcePath)
        try branch.inlineConstantNodes()

        var existing = taken
        var defined = Array(branch.initializers.keys).sorted()
        for inner in branch.nodes { defined += inner.outputs.filter { !$0.isEmpty } }
        for name in defined where existing.contains(name) {
            var fresh = "\(name)__\(node.name.isEmpty ? "if" : node.name)"
            var n = 1
            while existing.contains(fresh) || branch.defines(fresh) {
                n += 1
                fresh = "\(name)__\(node.name.isEmpty ? "if" : node.name)_\(n)"
            }
            branch.renameDefinition(of: name, to: fresh)
            existing.insert(fresh)
        }
        return branch
    }

    /// Names this graph defines: initializers and node outputs.
    var definedNames: Set<String> {
        var names = Set(initializers.keys)
        for node in nodes { names.formUnion(node.outputs.filter { !$0.isEmpty }) }
        return names
    }

    /// Whether a node output or initializer of this graph is called `name`.
    private func defines(_ name: String) -> Bool {
        initializers[name] != nil || nodes.contains { $0.outputs.contains(name) }
    }

    /// Renames a value this graph defines (initializer or node output) and every read of it, nested graphs
    /// and graph outputs included.
    private func renameDefinition(of old: String, to new: String) {
        if let tensor = initializers.removeValue(forKey: old) { initializers[new] = tensor }
        if var info = values.removeValue(forKey: old) {
            info.name = new
            values[new] = info
        }
        for i in nodes.indices {
            for j in nodes[i].outputs.indices where nodes[i].outputs[j] == old { nodes[i].outputs[j] = new }
        }
        renameUses(of: old, to: new)
    }
}
