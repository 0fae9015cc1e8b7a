import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry } from './registry.js';

test('the exposition text: HELP and TYPE, escaped label values, cumulative histogram buckets', () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter('demo_total', 'A demo counter.');
  counter.inc({ vm: 'a"b\\c\nd' });
  counter.inc({ vm: 'a"b\\c\nd' }, 2);
  registry.gauge('demo_open', 'Open now.', () => [{ value: 3 }]);
  const histogram = registry.histogram('demo_seconds', 'Latency.', [0.1, 1]);
  histogram.observe({ route: '/x' }, 0.05);
  histogram.observe({ route: '/x' }, 0.5);
  histogram.observe({ route: '/x' }, 5);
  assert.equal(
    registry.render(),
    [
      '# HELP demo_total A demo counter.',
      '# TYPE demo_total counter',
      'demo_total{vm="a\\"b\\\\c\\nd"} 3',
      '# HELP demo_open Open now.',
      '# TYPE demo_open gauge',
      'demo_open 3',
      '# HELP demo_seconds Latency.',
      '# TYPE demo_seconds histogram',
      'demo_seconds_bucket{route="/x",le="0.1"} 1',
      'demo_seconds_bucket{route="/x",le="1"} 2',
      'demo_seconds_bucket{route="/x",le="+Inf"} 3',
      'demo_seconds_sum{route="/x"} 5.55',
      'demo_seconds_count{route="/x"} 3',
      '',
    ].join('\n'),
  );
});
