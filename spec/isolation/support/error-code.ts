/** The `code` a promise rejects with (or its message), or `undefined` when it resolves. */
export async function code(promise: PromiseLike<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}
