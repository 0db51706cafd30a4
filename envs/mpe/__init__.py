"""Multi-agent particle environments (MPE), matching PettingZoo's MPE as maintained in ``mpe2``.

Nine scenarios under JaxMARL's ids, each with discrete (default) or continuous actions
(``make(id, action_type="continuous")``). See ``docs/envs/mpe.md``.
"""

from accelrl.envs.mpe.simple import Simple
from accelrl.envs.mpe.simple_adversary import SimpleAdversary
from accelrl.envs.mpe.simple_crypto import SimpleCrypto
from accelrl.envs.mpe.simple_push import SimplePush
from accelrl.envs.mpe.simple_reference import SimpleReference
from accelrl.envs.mpe.simple_speaker_listener import SimpleSpeakerListener
from accelrl.envs.mpe.simple_spread import SimpleSpread
from accelrl.envs.mpe.simple_tag import SimpleTag
from accelrl.envs.mpe.simple_world_comm import SimpleWorldComm
from accelrl.envs.mpe.world import MPEEnv, MPEParams, MPEState, WorldLayout
from accelrl.envs.registry import register

#: accelrl id -> scenario class (JaxMARL's ids; mpe2 module name without the ``MPE_`` prefix).
MPE_SCENARIOS: dict[str, type[MPEEnv]] = {
    "MPE_simple_v3": Simple,
    "MPE_simple_spread_v3": SimpleSpread,
    "MPE_simple_push_v3": SimplePush,
    "MPE_simple_crypto_v3": SimpleCrypto,
    "MPE_simple_speaker_listener_v4": SimpleSpeakerListener,
    "MPE_simple_tag_v3": SimpleTag,
    "MPE_simple_world_comm_v3": SimpleWorldComm,
    "MPE_simple_reference_v3": SimpleReference,
    "MPE_simple_adversary_v3": SimpleAdversary,
}

for _env_id, _cls in MPE_SCENARIOS.items():
    register(_env_id, _cls, multi_agent=True)

__all__ = [
    "MPE_SCENARIOS",
    "MPEEnv",
    "MPEParams",
    "MPEState",
    "WorldLayout",
    "Simple",
    "SimpleAdversary",
    "SimpleCrypto",
    "SimplePush",
    "SimpleReference",
    "SimpleSpeakerListener",
    "SimpleSpread",
    "SimpleTag",
    "SimpleWorldComm",
]
