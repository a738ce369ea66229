// If whose condition is only known at run time. Constant folding inlines every If whose condition it can
// decide (IfInlining.swift); the ones left are expanded here, before the lowering passes, into the nodes of
// both branches:
//
//   cond ──► [then_branch nodes, predicate cond ≠ 0] [then results] [else_branch nodes, predicate cond = 0] [else results]
//
// Every step a branch node lowers to carries its predicate (LoweredStep.predicate); the runtime skips the steps
// of the branch not taken with VK_EXT_conditional_rendering. Each branch writes its results into the If's
// output tensors, so whichever branch runs produces them: a result the branch computes with a kernel is
// retargeted (that kernel writes the If output directly), anything else (a view, a constant, an outer value) is
// copied by one predicated copy step. The arena planner sees the If outputs bound from the then_branch's
// writing step to their last reader, which spans the else_branch, and keeps the condition live up to the last
// predicated step (ArenaPlanner.swift).
//
// An If nested in a branch whose condition is still dynamic (constant folding, which sees the enclosing scope,
// decides most of them) is expanded in place; its steps run on outer ∧ own, a bool tensor computed by small
// unpredicated And / Not / Cast steps where the nested If was (`nestedPredicate`), since a step has one predicate.
//
// Expanding before the passes (BatchNorm folding, Relu fusion, copy composition) lets them see the branch
// nodes' reads of outer values as explicit inputs. Owned by the control-flow lowering.

import FMBFormat

extension LoweringContext {
    /// The pseudo-op that writes a branch result into an If output: input 0 the branch's value, output 0 the
    /// If's; attribute `retarget` 1 when the branch computes the value itself (see `lowerBranchResult`).
    static let branchResultOp = "FlashMem.BranchResult"

    /// Replaces every If in `nodes` by the predicated nodes of both branches and their result nodes; an If nested
    /// in a branch is expanded in turn, its steps predicated on the conjunction of the conditions (see
    /// `nestedPredicate`). Afterwards `graph` is a copy holding the branches' nodes, constants and values.
    ///
    /// - Throws: `CompileError` naming the If for a condition that is not one bool or integer element, or branches
    ///   whose outputs differ in shape or dtype from the If's.
    func expandRuntimeIfs() throws {
        guard nodes.contains(where: { isRuntimeIf($0.node) }) else { return }
        var taken = Set(values.keys).union(initializers.keys).union(graph.inputs.map(\.name))
        for n in nodes { taken.formUnion(n.node.outputs.filter { !$0.isEmpty }) }
        var expanded: [LoweringNode] = []
        for n in nodes {
            if isRuntimeIf(n.node) {
                expanded += try expandIf(n, within: nil, taken: &taken)
            } else {
                expanded.append(n)
            }
        }
        nodes = expanded
        refreshGraph()
    }

    private func isRuntimeIf(_ node: Node) -> Bool {
        node.opType == "If" && (node.domain.isEmpty || node.domain == "ai.onnx")
    }

    /// Both branches of `n`, each followed by its result nodes. `outer`: the predicate of the branch `n` sits in
    /// (nil at the top level).
    private func expandIf(_ n: LoweringNode, within outer: LoweredPredicate?,
                          taken: inout Set<String>) throws -> [LoweringNode] {
        let condition = try checkedCondition(n)
        var expanded: [LoweringNode] = []
        for (attribute, sense) in [("then_branch", PredicateSense.nonZero), ("else_branch", .zero)] {
            guard case .graph(let original)? = n.node.attributes[attribute] else {
                throw error(n, "If needs a '\(attribute)' graph attribute")
            }
            guard original.outputs.count == n.node.outputs.count else {
                throw error(n, "\(attribute) has \(original.outputs.count) outputs, the If has \(n.node.outputs.count)")
            }
            let branch = try Graph.isolatedBranch(original, of: n.node, avoiding: taken)
            taken.formUnion(branch.definedNames)
            try inferBranch(branch, of: n)
            let own = LoweredPredicate(tensor: condition, sense: sense)
            var predicate = own
            if let outer {
                let (nodes, combined) = try nestedPredicate(outer, and: own, for: n, branch: attribute, taken: &taken)
                expanded += nodes
                predicate = combined
            }
            for inner in branch.nodes {
                if isRuntimeIf(inner) {
                    expanded += try expandIf(LoweringNode(inner), within: predicate, taken: &taken)
                    continue
                }
                var lowered = LoweringNode(inner)
                lowered.predicate = predicate
                expanded.append(lowered)
            }
            expanded += try resultNodes(of: branch, named: attribute, for: n, predicate: predicate)
        }
        return expanded
    }

    /// The predicate of a branch of an If nested in another's branch: a new bool tensor, outer ∧ own, computed by
    /// unpredicated nodes (Cast to bool where a condition is an integer, Not for a zero sense, And) placed where
    /// the nested If was. They run whichever branch is taken: when the outer predicate fails, the nested If's
    /// condition was never computed and its arena words are stale, which the And then ignores (the kernels test
    /// words against 0, so any stale word is a valid operand).
    private func nestedPredicate(_ outer: LoweredPredicate, and own: LoweredPredicate, for n: LoweringNode,
                                 branch: String, taken: inout Set<String>) throws -> ([LoweringNode], LoweredPredicate) {
        var nodes: [LoweringNode] = []
        func fresh(_ base: String) -> String {
            var name = "\(n.label)/\(branch)/\(base)", k = 1
            while taken.contains(name) {
                k += 1
                name = "\(n.label)/\(branch)/\(base)_\(k)"
            }
            taken.insert(name)
            return name
        }
        func add(_ op: String, _ inputs: [String], _ base: String, attributes: [String: Attribute] = [:]) throws -> String {
            let output = fresh(base)
            let shapes = try inputs.map { try self.shape($0, of: n) }
            values[output] = ValueInfo(name: output, dtype: .bool, shape: try ShapeRules.broadcast(shapes))
            nodes.append(LoweringNode(Node(name: output, opType: op, inputs: inputs, outputs: [output],
                                           attributes: attributes)))
            return output
        }
        /// A bool tensor that is true exactly when `predicate` lets a step run.
        func truth(_ predicate: LoweredPredicate, _ base: String) throws -> String {
            var name = predicate.tensor
            if dtype(name) != .bool {
                name = try add("Cast", [name], "\(base)_bool", attributes: ["to": .int(Int(DType.bool.rawValue))])
            }
            return predicate.sense == .zero ? try add("Not", [name], "\(base)_not") : name
        }
        let both = try add("And", [try truth(outer, "outer_condition"), try truth(own, "condition")], "condition_and")
        return (nodes, LoweredPredicate(tensor: both, sense: .nonZero))
    }

    /// The If's condition: one bool or integer element (the arena holds it as a 32-bit integer, which the
    /// runtime tests against 0), computed at run time.
    private func checkedCondition(_ n: LoweringNode) throws -> String {
        let condition = try input(n, 0)
        guard let dtype = dtype(condition) else {
            throw error(n, "the type of the condition '\(condition)' is unknown")
        }
        guard dtype == .bool || (!dtype.isFloat && dtype.elementType != nil) else {
            throw error(n, "an If condition of dtype \(dtype) is not supported (bool or int32/int64 only)")
        }
        let count = elementCount(try shape(condition, of: n))
        guard count == 1 else {
            throw error(n, "the condition '\(condition)' has \(count) elements; If needs exactly one")
        }
        return condition
    }

    /// Infers the static shapes of a branch's values with the enclosing graph's values in scope, and makes the
    /// branch's values and constants the lowering's own.
    private func inferBranch(_ branch: Graph, of n: LoweringNode) throws {
        for (name, tensor) in branch.initializers {
            branch.values[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
        }
        let scope = Graph(name: branch.name, nodes: branch.nodes, inputs: [], outputs: branch.outputs,
                          initializers: initializers.merging(branch.initializers) { $1 },
                          values: values.merging(branch.values) { $1 }, opset: graph.opset, sourcePath: file)
        try ShapeInference(graph: scope, strict: true).run()
        for name in branch.definedNames {
            if let info = scope.values[name] { values[name] = info }
        }
        initializers.merge(branch.initializers) { $1 }
    }

    /// One result node per If output: the branch's value (its shape and dtype checked against the If output's)
    /// written into the If output. A value the branch computes with a node may be retargeted; a second output
    /// naming the same value copies the first If output instead.
    private func resultNodes(of branch: Graph, named attribute: String, for n: LoweringNode,
                             predicate: LoweredPredicate) throws -> [LoweringNode] {
        let computed = Set(branch.nodes.flatMap(\.outputs))
        var firstTarget: [String: String] = [:]
        var results: [LoweringNode] = []
        for (k, target) in n.node.outputs.enumerated() where !target.isEmpty {
            let source = branch.outputs[k].name
            let have = try shape(source, of: n), want = try shape(target, of: n)
            guard have == want else {
                throw error(n, "If branches with different output shapes are not supported: output \(k) of "
                    + "\(attribute) is \(IRText.shape(have)), the If output '\(target)' is \(IRText.shape(want))")
            }
            if let a = dtype(source), let b = dtype(target), a != b {
                throw error(n, "If branches with different output dtypes are not supported: output \(k) of "
                    + "\(attribute) is \(a), the If output '\(target)' is \(b)")
            }
            let input = firstTarget[source] ?? source
            let retarget = firstTarget[source] == nil && computed.contains(source)
            firstTarget[source] = firstTarget[source] ?? target
            var result = LoweringNode(Node(name: "\(n.label)/\(attribute)/\(target)", opType: Self.branchResultOp,
                                           inputs: [input], outputs: [target],
                                           attributes: ["retarget": .int(retarget ? 1 : 0)]))
            result.predicate = predicate
            results.append(result)
        }
        return results
    }

    /// Writes a branch result into its If output: a value the branch's kernels compute (an activation, not a
    /// view or a constant) is retargeted, i.e. those kernels write the If output instead; anything else is
    /// copied by one copy step (predicated like the branch).
    func lowerBranchResult(_ n: LoweringNode) throws {
        let source = try input(n, 0), target = try output(n)
        let shape = try shape(target, of: n)
        if program.tensors[target] == nil { try registerActivation(target, producer: n) }
        if n.node.int("retarget", default: 0) == 1, let tensor = program.tensors[source], tensor.viewOf == nil,
           tensor.constant == nil, program.steps.contains(where: { $0.bindings.contains(.tensor(source)) }) {
            retarget(source, to: target)
            return
        }
        let from = try read(source, for: n)
        try emitCopy(n, role: "if_result", from: from, StridedAccess.contiguous(shape), to: .tensor(target),
                     outStrides: StridedAccess.rowMajorStrides(shape), outOffset: 0)
    }

    /// Makes every step and view that uses `source` (a value local to one branch) use `target` instead.
    private func retarget(_ source: String, to target: String) {
        for k in program.steps.indices {
            program.steps[k].bindings = program.steps[k].bindings.map { $0 == .tensor(source) ? .tensor(target) : $0 }
            if program.steps[k].predicate?.tensor == source { program.steps[k].predicate?.tensor = target }
        }
        for (name, tensor) in program.tensors where tensor.viewOf == source {
            program.tensors[name]?.viewOf = target
        }
        program.tensors[source] = nil
    }
}
