/**
 * The host's page allocator (alloc_page / alloc_pages / __free_page): hands out zeroed 4 KiB
 * frames of host physical memory. Fresh frames come from a bump pointer (PhysMemory is zero
 * until touched, so they cost nothing); freed frames are reused and re-zeroed.
 */
import { PAGE_SIZE, type PhysMemory } from '@kvmts/x86';

export class PageAllocator {
  private next: number;
  private readonly free: number[] = [];
  private used = 0;

  private readonly mem: PhysMemory;

  constructor(mem: PhysMemory, firstFree = PAGE_SIZE) {
    this.mem = mem;
    this.next = firstFree;
  }

  /** A zeroed page's HPA, or -1 when memory is exhausted. */
  allocPage(): number {
    const hpa = this.free.pop();
    if (hpa !== undefined) {
      this.mem.fill(hpa, PAGE_SIZE, 0);
      this.used++;
      return hpa;
    }
    return this.allocPages(0);
  }

  /** 2^order contiguous zeroed pages, aligned to their size, or -1. */
  allocPages(order: number): number {
    const bytes = PAGE_SIZE * 2 ** order;
    const hpa = Math.ceil(this.next / bytes) * bytes;
    if (hpa + bytes > this.mem.size) return -1;
    // Pages skipped for alignment are not lost.
    for (let p = this.next; p < hpa; p += PAGE_SIZE) this.free.push(p);
    this.next = hpa + bytes;
    this.used += 2 ** order;
    return hpa;
  }

  freePage(hpa: number): void {
    this.free.push(hpa);
    this.used--;
  }

  /** Pages currently handed out. */
  get pagesInUse(): number {
    return this.used;
  }
}
