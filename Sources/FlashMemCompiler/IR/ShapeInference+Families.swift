// Shape rules contributed by op families outside ShapeInference.swift's switch. Each family keeps its rules
// in its own file (ShapeInference+<Family>.swift) as a `[op: rule]` table and is listed here once.

typealias ShapeRule = (NodeContext) throws -> [TensorType]

extension ShapeInference {
    /// Every family table, merged; an op must appear in at most one (checked by a unit test).
    static let familyTables: [[String: ShapeRule]] = [normalizationShapes, elementwiseShapes, movementShapes,
                                                          evaluationShapes, recurrentShapes, spatialShapes,
                                                          einsumShapes, scatterShapes]

    static let familyRules: [String: ShapeRule] = familyTables.reduce(into: [:]) { merged, table in
        merged.merge(table) { first, _ in first }
    }
}
