import { InterleaveError } from '../errors.js';

/** Definitions looked up by name (blocks, tasks): duplicates are an error, never a silent override. */
export class NamedRegistry<Definition extends { readonly name: string }> {
  private readonly byName = new Map<string, Definition>();

  constructor(private readonly kind: string) {}

  register(definition: Definition): void {
    if (this.byName.has(definition.name)) {
      throw new InterleaveError(`${this.kind} '${definition.name}' is registered twice`);
    }
    this.byName.set(definition.name, definition);
  }

  get(name: string): Definition | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}
