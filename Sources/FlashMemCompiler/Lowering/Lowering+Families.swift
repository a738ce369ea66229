// Lowering rules contributed by op families outside Lowering.swift's switch. Each family keeps its rules in
// its own file (Lowering+<Family>.swift) as a `[op: rule]` table and is listed here once.

typealias LoweringRule = (LoweringContext) -> (LoweringNode) throws -> Void

extension LoweringContext {
    /// Every family table, merged; an op must appear in at most one (checked by a unit test).
    static let familyTables: [[String: LoweringRule]] = [reductionRules, elementwiseRules, normalizationRules, softmaxRules, movementRules,
                                                             recurrentRules, convTransposeRules, scatterRules]

    static let familyRules: [String: LoweringRule] = familyTables.reduce(into: [:]) { merged, table in
        merged.merge(table) { first, _ in first }
    }
}
