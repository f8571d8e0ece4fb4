import type { DocumentNode, GraphQLSchema } from 'graphql';
import { type ComplexityEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import mercurius from 'mercurius';

/**
 * The cost limit of a query, checked before it runs (graphql-query-complexity), with the request's
 * variables (so `first: $n` is priced at the n sent): a field costs 1; a root list costs its page
 * size (`first`, default 100) times its selection; a device's sensors count SENSORS_PER_DEVICE
 * times theirs. A query is priced by what it could fetch, not by what the organization happens
 * to hold today. Depth is limited separately (mercurius `queryDepth`).
 */

const DEFAULT_FIRST = 100;
/** The estimate of one device's sensors (gateways with dozens exist; most hold a handful). */
const SENSORS_PER_DEVICE = 50;

const listEstimator: ComplexityEstimator = ({ args, field, childComplexity }) => {
  if (field.args.some((arg) => arg.name === 'first')) return (args.first ?? DEFAULT_FIRST) * (1 + childComplexity);
  if (field.name === 'sensors') return SENSORS_PER_DEVICE * (1 + childComplexity);
  return undefined;
};

/** Throws a QUERY_TOO_COSTLY error (400) when the document costs more than `maximumCost`. */
export function checkCost(
  schema: GraphQLSchema,
  query: DocumentNode,
  variables: Record<string, unknown> | undefined,
  maximumCost: number,
): void {
  const cost = getComplexity({
    schema,
    query,
    variables: variables ?? {},
    estimators: [listEstimator, simpleEstimator({ defaultComplexity: 1 })],
  });
  if (cost > maximumCost)
    throw new mercurius.ErrorWithProps(
      `The query is too costly: its estimated cost is ${cost}, the limit ${maximumCost}. Ask for smaller pages (first) or fewer fields.`,
      { code: 'QUERY_TOO_COSTLY', cost, limit: maximumCost },
      400,
    );
}
