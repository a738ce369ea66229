// If on a condition known at compile time: the taken branch's nodes replace the If, the other branch is dropped.
// Called by `foldConstants` (ConstantFolding.swift), which then folds the inlined nodes in the same pass. An If
// whose condition stays dynamic keeps both branches, simplified with the enclosing scope's shapes and constants
// in sight (`specializingBranches`, which also types the If's outputs through `branchOutputTypes`); lowering
// splices them with `isolatedBranch` and predicates their steps (Lowering+ControlFlow.swift).
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
    /// (compile-time If: `inlineBranch`; run-time If: Lowering+ControlFlow.swift). `original` and its nested graphs
    /// are not modified: they may be shared (hand-built graphs, a lowering that runs twice).
    ///
    /// - Throws: `CompileError` for an unusable Constant node of the branch.
    static func isolatedBranch(_ original: Graph, of node: Node, avoiding taken: Set<String>) throws -> Graph {
        let branch = original.deepCopy()
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

    /// A copy of this graph whose nested graphs are copies too, so that renaming in it never reaches `self`.
    func deepCopy() -> Graph {
        var copied = nodes
        for i in copied.indices {
            for (key, attribute) in copied[i].attributes {
                if case .graph(let nested) = attribute { copied[i].attributes[key] = .graph(nested.deepCopy()) }
            }
        }
        return Graph(name: name, nodes: copied, inputs: inputs, outputs: outputs, initializers: initializers,
                     values: values, opset: opset, sourcePath: sourcePath)
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

// MARK: - If decided at run time

extension Graph {
    /// `node`, an If whose condition is not a constant, with both branches simplified in this graph's scope: the
    /// values and constants this graph knows so far are visible to the branches' constant folding and shape
    /// inference, as the top-level graph's own are to it, so what depends only on them folds (a Shape of an outer
    /// value, a nested If on a shape test) and branch outputs get static shapes where they are static. Called by
    /// `foldConstants` before it infers the If. The branches are replaced, not modified (they may be shared).
    ///
    /// - Throws: `CompileError` for an unusable Constant node of a branch.
    func specializingBranches(of node: Node) throws -> Node {
        var node = node
        for key in ["then_branch", "else_branch"] {
            guard case .graph(let branch)? = node.attributes[key] else { continue }
            node.attributes[key] = .graph(try specialized(branch, of: node))
        }
        return node
    }

    /// The dtype and shape of each output of `branch` (an If branch of `node`), inferred in this graph's scope
    /// (see `branchScope`); where inference cannot tell, the branch's declared type stands in. `failure` is the
    /// first node of the branch that inference rejects (the branch cannot run on these shapes), if any. The If
    /// shape rule reads both branches through this.
    ///
    /// - Throws: `CompileError` for an unusable Constant node of the branch.
    func branchOutputTypes(_ branch: Graph, of node: Node) throws -> (types: [ValueInfo], failure: CompileError?) {
        let scope = try branchScope(branch, of: node)
        let inference = ShapeInference(graph: scope, strict: false)
        var failure: CompileError?
        for inner in scope.nodes {
            if failure == nil {
                do { _ = try inference.infer(inner) } catch let error as CompileError { failure = error }
            }
            try inference.inferAndRecord(inner)
        }
        let types = scope.outputs.map { declared in
            guard let inferred = scope.values[declared.name], inferred.staticShape != nil else { return declared }
            return inferred
        }
        return (types, failure)
    }

    /// A graph that evaluates `original` (an If branch of `node`) in this graph's scope: the branch's nodes and
    /// outputs, with every name it defines that this graph also knows renamed (`isolatedBranch`), over this
    /// graph's constants and known values plus the branch's own.
    private func branchScope(_ original: Graph, of node: Node) throws -> Graph {
        let outer = Set(initializers.keys).union(values.keys).union(inputs.map(\.name))
        let branch = try Graph.isolatedBranch(original, of: node, avoiding: outer)
        var known = values
        for name in branch.definedNames {
            if let tensor = branch.initializers[name] {
                known[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
            } else if let declared = branch.values[name] {
                known[name] = declared
            }
        }
        return Graph(name: branch.name, nodes: branch.nodes, inputs: [], outputs: branch.outputs,
                     initializers: initializers.merging(branch.initializers) { $1 }, values: known, opset: opset,
                     sourcePath: sourcePath)
    }

    /// `original` simplified in this graph's scope as `simplify` does a graph (aliases, constant folding with
    /// nested Ifs inlined or specialized in turn, dead nodes), keeping only what the branch defines; its
    /// declared outputs take the static types inferred for them.
    private func specialized(_ original: Graph, of node: Node) throws -> Graph {
        let scope = try branchScope(original, of: node)
        scope.removeAliases()
        var rounds = 0
        while try scope.foldConstants(), rounds < 8 {
            scope.removeAliases()
            rounds += 1
        }
        scope.removeDeadNodes()
        let outerConstants = initializers
        let branch = Graph(name: original.name, nodes: scope.nodes, inputs: [], outputs: scope.outputs,
                           initializers: scope.initializers.filter { outerConstants[$0.key] == nil }, values: [:],
                           opset: original.opset, sourcePath: original.sourcePath)
        let defined = branch.definedNames
        branch.values = scope.values.filter { defined.contains($0.key) }
        for (k, output) in branch.outputs.enumerated() {
            if let inferred = scope.values[output.name], inferred.staticShape != nil { branch.outputs[k] = inferred }
        }
        return branch
    }
}
