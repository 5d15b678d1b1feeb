/**
 * Users and their permissions, as `rabbitmqctl add_user` and `set_permissions` keep them: per vhost,
 * three regular expressions (configure, write, read) matched against resource names, unanchored;
 * an empty expression matches only the empty name.
 * @internal
 */

/** The three regular expressions of `rabbitmqctl set_permissions`. */
export interface Permissions {
  /** Declaring and deleting queues and exchanges. @example '^(my-app\\.|amq\\.gen-).*' */
  readonly configure: string;
  /** Publishing to exchanges; binding a queue (the queue's side). @example '.*' */
  readonly write: string;
  /** Consuming from queues; binding a queue (the exchange's side). @example '.*' */
  readonly read: string;
}

export type Access = 'configure' | 'write' | 'read';

interface Grant {
  readonly configure: RegExp | true;
  readonly write: RegExp | true;
  readonly read: RegExp | true;
}

interface User {
  password: string;
  readonly grants: Map<string, Grant>;
}

/** RabbitMQ reads an empty expression as `^$`; `.*` (the usual grant) matches anything without a test. */
function compile(expression: string): RegExp | true {
  if (expression === '.*') return true;
  return new RegExp(expression === '' ? '^$' : expression);
}

export class Users {
  readonly #users = new Map<string, User>();

  has(name: string): boolean {
    return this.#users.has(name);
  }

  names(): string[] {
    return [...this.#users.keys()];
  }

  add(name: string, password: string): void {
    this.#users.set(name, { password, grants: new Map() });
  }

  delete(name: string): boolean {
    return this.#users.delete(name);
  }

  setPassword(name: string, password: string): void {
    const user = this.#users.get(name);
    if (user !== undefined) user.password = password;
  }

  /** Compiles the expressions first, so a bad one throws before anything changes. */
  grant(name: string, vhost: string, permissions: Permissions): void {
    const grant: Grant = { configure: compile(permissions.configure), write: compile(permissions.write), read: compile(permissions.read) };
    this.#users.get(name)?.grants.set(vhost, grant);
  }

  revoke(name: string, vhost: string): void {
    this.#users.get(name)?.grants.delete(vhost);
  }

  /** Forgets every grant on `vhost` (it was deleted). */
  revokeVhost(vhost: string): void {
    for (const user of this.#users.values()) user.grants.delete(vhost);
  }

  authenticate(name: string, password: string): boolean {
    return this.#users.get(name)?.password === password;
  }

  /** True when the user has any permissions on the vhost (what opening a connection to it needs). */
  canEnter(name: string, vhost: string): boolean {
    return this.#users.get(name)?.grants.has(vhost) === true;
  }

  permitted(name: string, vhost: string, access: Access, resourceName: string): boolean {
    const grant = this.#users.get(name)?.grants.get(vhost);
    if (grant === undefined) return false;
    const expression = grant[access];
    return expression === true || expression.test(resourceName);
  }
}
