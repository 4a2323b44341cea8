import { InterleaveError } from '../errors.js';

/**
 * Definitions looked up by name (blocks, tasks, evaluations). Registering a name twice is an
 * error, never a silent override; replacing an entry is a separate, explicit call.
 */
export class NamedRegistry<Definition extends { readonly name: string }> {
  private readonly byName = new Map<string, Definition>();

  /** `kind` names an entry in messages: 'block', 'task', 'evaluation'. */
  constructor(readonly kind: string) {}

  register(definition: Definition): void {
    if (this.byName.has(definition.name)) {
      throw new InterleaveError(`${this.kind} '${definition.name}' is registered twice`);
    }
    this.byName.set(definition.name, definition);
  }

  /**
   * Puts `definition` in place of the entry registered under its name (a test's instrumented
   * block, a plugin's faster task). Replacing a name nobody registered is an error: it is
   * almost always a typo, and `register` is the call for a new name.
   */
  replace(definition: Definition): void {
    if (!this.byName.has(definition.name)) {
      throw new InterleaveError(
        `cannot replace ${this.kind} '${definition.name}': it is not registered (registered: ${this.describeNames()})`,
      );
    }
    this.byName.set(definition.name, definition);
  }

  get(name: string): Definition | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** The registered names for a message, or 'none'. */
  describeNames(): string {
    return this.names().join(', ') || 'none';
  }
}
