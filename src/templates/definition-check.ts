// What saving a template checks, whoever saves it (the api role's PUT, the console's edit form):
// the structure of the definition, then a trial render of every part.
import { structuralProblems, type DefinitionProblem, type TemplateDefinition } from '../domain/template.js';
import { textProblems } from './template-renderer.js';

/** Every problem of a definition; none means it may be saved. */
export async function definitionProblems(
  definition: TemplateDefinition,
  renderMs: number,
): Promise<DefinitionProblem[]> {
  return [...structuralProblems(definition), ...(await textProblems(definition, renderMs))];
}
