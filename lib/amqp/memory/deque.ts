/**
 * A FIFO with cheap removal at the head, appending at the tail, and ordered insertion (a requeued
 * message goes back where it was). Space freed at the head is reclaimed as the head advances, so
 * a queue that drains keeps no memory of what went through it.
 * @internal
 */
export class Deque<T> {
  #items: Array<T | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Inserts `item` before the first item whose `order` is greater (items are kept sorted by `order`). */
  insertSorted(item: T, order: (item: T) => number): void {
    const key = order(item);
    let low = this.#head;
    let high = this.#items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (order(this.#items[middle] as T) <= key) low = middle + 1;
      else high = middle;
    }
    if (low === this.#head && this.#head > 0) {
      this.#head--;
      this.#items[this.#head] = item;
    } else {
      this.#items.splice(low, 0, item);
    }
  }

  /** Removes and returns every item, in order. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }
}
