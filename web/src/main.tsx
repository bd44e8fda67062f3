import { render } from 'preact';
// With the app's own styles (index.html), so the lazily loaded charts need no stylesheet of their own.
import 'uplot/dist/uPlot.min.css';
import { App } from './app.tsx';

render(<App />, document.getElementById('root')!);
