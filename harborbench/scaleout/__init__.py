"""Scale-out: one workload split into shards, merged exactly into one result.

``harborbench run P --workers N`` runs N shard processes on this host
(:mod:`~harborbench.scaleout.local`); ``--ray`` runs one Ray actor per shard
(:mod:`~harborbench.scaleout.ray_backend`, the optional extra ``harborbench[ray]``; Ray is
imported only there). Each shard is today's engine on its stripe of one global plan
(:mod:`~harborbench.scaleout.shard`); the coordinator (:mod:`~harborbench.scaleout.coordinator`)
starts them on one measurement window and merges them (:mod:`~harborbench.scaleout.merge`).
The design, with its measured facts, is ``shared/SCALEOUT.md``.
"""
