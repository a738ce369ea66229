// Graph structure queries and the topological sort. Used by the importer (which must not trust the file's node
// order) and by the simplification passes. Owned by the importer.

extension Graph {
    /// Names read by this graph's nodes (and, recursively, by their nested graphs) that the graph does not define
    /// itself: what a nested graph takes from the graphs enclosing it.
    public var outerReferences: Set<String> {
        var defined = Set(initializers.keys)
        defined.formUnion(inputs.map(\.name))
        var used = Set<String>()
        for node in nodes {
            defined.formUnion(node.outputs)
            used.formUnion(node.referencedNames)
        }
        return used.subtracting(defined).subtracting([""])
    }

    /// Sorts `nodes` topologically. Where the current order is already topological it is kept (a stable sort:
    /// among ready nodes, the earliest goes first).
    ///
    /// - Parameter outerScope: names defined by enclosing graphs (for nested graphs).
    /// - Throws: `CompileError` naming the node for a read of an undefined value, a value written twice, or a
    ///   cycle; naming the output for a graph output nothing defines.
    public func sortTopologically(outerScope: Set<String> = []) throws {
        var available = outerScope
        available.formUnion(initializers.keys)
        available.formUnion(inputs.map(\.name))

        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let other = producer[output] {
                    throw CompileError(file: sourcePath, node: node.name, op: node.opType,
                                       "writes '\(output)', which node '\(nodes[other].name)' writes too")
                }
                if initializers[output] != nil || inputs.contains(where: { $0.name == output }) {
                    throw CompileError(file: sourcePath, node: node.name, op: node.opType,
                                       "writes '\(output)', which is a graph input or initializer")
                }
                producer[output] = i
            }
        }

        var consumers = [[Int]](repeating: [], count: nodes.count)
        var pending = [Int](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            // Sorted so that the error for several undefined inputs is deterministic.
            var seen = Set<Int>()
            for name in node.inputs + node.nestedGraphReferences.sorted() where !name.isEmpty {
                if let p = producer[name] {
                    if seen.insert(p).inserted {
                        consumers[p].append(i)
                        pending[i] += 1
                    }
                } else if !available.contains(name) {
                    throw CompileError(file: sourcePath, node: node.name, op: node.opType,
                                       "input '\(name)' is not defined by any node, graph input or initializer")
                }
            }
        }

        var heap = MinHeap()
        for i in nodes.indices where pending[i] == 0 { heap.push(i) }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = heap.pop() {
            order.append(i)
            for c in consumers[i] {
                pending[c] -= 1
                if pending[c] == 0 { heap.push(c) }
            }
        }
        if order.count < nodes.count {
            // A node left over waits on another left-over node; walking back along such inputs must come round
            // to a node visited before, which lies on a cycle.
            func blockedInput(_ i: Int) -> (name: String, producer: Int) {
                let node = nodes[i]
                for name in node.inputs + node.nestedGraphReferences.sorted() {
                    if let p = producer[name], pending[p] > 0 { return (name, p) }
                }
                preconditionFailure("a node with pending inputs has a pending producer")
            }
            var visited = Set<Int>()
            var current = nodes.indices.first { pending[$0] > 0 }!
            while visited.insert(current).inserted { current = blockedInput(current).producer }
            let node = nodes[current]
            throw CompileError(file: sourcePath, node: node.name, op: node.opType,
                               "is part of a cycle: its input '\(blockedInput(current).name)' depends on its own output")
        }
        nodes = order.map { nodes[$0] }

        for output in outputs where producer[output.name] == nil && !available.contains(output.name) {
            throw CompileError(file: sourcePath, "graph output '\(output.name)' is not produced by any node")
        }
    }

    /// Renames every read of `old` to `new`, in this graph's nodes, its outputs and its nested graphs (which may
    /// read it from the outer scope). ONNX names are unique (SSA), so no shadowing needs handling.
    func renameUses(of old: String, to new: String) {
        for i in nodes.indices {
            for j in nodes[i].inputs.indices where nodes[i].inputs[j] == old { nodes[i].inputs[j] = new }
            for case .graph(let nested) in nodes[i].attributes.values { nested.renameUses(of: old, to: new) }
        }
        for i in outputs.indices where outputs[i].name == old { outputs[i].name = new }
    }
}

extension Node {
    /// Nested graphs held by graph attributes (If branches, Loop bodies).
    public var nestedGraphs: [Graph] {
        attributes.keys.sorted().compactMap { key in
            if case .graph(let g) = attributes[key] { return g }
            return nil
        }
    }

    /// Outer-scope names this node's nested graphs read: implicit inputs of the node.
    public var nestedGraphReferences: Set<String> {
        var names = Set<String>()
        for g in nestedGraphs { names.formUnion(g.outerReferences) }
        return names
    }

    /// Explicit and implicit (nested-graph) inputs.
    var referencedNames: Set<String> {
        Set(inputs).union(nestedGraphReferences)
    }
}

/// A binary min-heap of node indices: picks the earliest ready node, keeping the input order where possible.
private struct MinHeap {
    private var items: [Int] = []

    mutating func push(_ x: Int) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] > items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(m, i)
                i = m
            }
        }
        return top
    }
}
