/**
 * The login page's seam for other ways to sign in: capabilities (external-signin) register a
 * source, and the login page asks every source for the buttons it shows beside the password
 * form. The page knows nothing of how those sign-ins work; a source knows nothing of the page.
 */

/** One button: a link the browser follows (GET) to start that sign-in. */
export interface SignInOption {
  label: string;
  href: string;
}

export interface SignInContext {
  /** Where the browser goes once signed in (already checked by the login page). */
  returnTo: string;
  /**
   * The organization of the authorization request being signed in for (its client's), or
   * undefined on a plain login (account pages, device flow).
   */
  organizationId: string | undefined;
}

export type SignInOptionsSource = (context: SignInContext) => Promise<readonly SignInOption[]>;

export class SignInOptions {
  private readonly sources: SignInOptionsSource[] = [];

  add(source: SignInOptionsSource): void {
    this.sources.push(source);
  }

  async for(context: SignInContext): Promise<SignInOption[]> {
    if (this.sources.length === 0) return [];
    return (await Promise.all(this.sources.map((source) => source(context)))).flat();
  }
}
