// The failing code of the browser e2e app: three named functions, so the test can check that
// the minified frames come back with these names, this file and these lines.

export function validateQuantity(order) {
  if (typeof order.quantity !== 'number' || order.quantity < 0) {
    throw new RangeError('invalid quantity: ' + order.quantity);
  }
  return order.quantity;
}

export function parseOrder(raw) {
  const order = JSON.parse(raw);
  order.total = validateQuantity(order) * (order.price || 1);
  return order;
}

export function processBatch(items) {
  const results = [];
  for (const item of items) {
    results.push(parseOrder(item));
  }
  return results;
}
