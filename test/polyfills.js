// aws-local-stepfunctions calls Promise.withResolvers (Node >= 22); these machines run Node 20.
if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve;
    let reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}

// A call to a deprecated aws-cdk-lib API fails the test that makes it (CDK prints a warning and carries on otherwise).
process.env.JSII_DEPRECATED = 'fail';
