/** Runs the auto-layout off the main thread (see `layoutInWorker` in layout.ts). */
import { layeredLayout, type LayoutRequest } from "./layout";

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const { id, graph, options } = event.data;
  try {
    self.postMessage({ id, positions: layeredLayout(graph, options) });
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
