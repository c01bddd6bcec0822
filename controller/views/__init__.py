"""Read-only views of a controller's world: status, dashboard, activity summary, events.

The split follows the rest of the package: `snapshot` does the reading (store opened read-only,
the same `observe` the controller uses, the lock probed without taking it); `status`,
`summary` and `timeline` are pure functions of (spec, observed, plan, store rows, now) that
compute every figure; `text`, `svg` and `dashboard` render those models. Nothing here ever
takes the controller lock or creates the state directory.
"""
