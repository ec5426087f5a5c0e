// aws-local-stepfunctions calls Promise.withResolvers (Node >= 22); these machines run Node 20.
if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve;
    let reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
