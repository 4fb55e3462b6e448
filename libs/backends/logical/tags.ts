// The LVM tag a create or clone puts on the LV it makes (`lvcreate --addtag`), and the
// selection that limits an undo to an LV carrying it. With it, a create whose lvcreate
// failed, timed out or was cancelled (LVM may have recorded the LV all the same), and the
// agent's cleanup of a create interrupted by its death, remove exactly the LV that create
// made and never a same-named one someone made in between (by hand, another tool), which
// an lvremove by name alone would take.
//
// The tag stays on the LV after a successful create: taking it off costs one more LVM
// command (lvchange --deltag, a metadata commit as long as the lvcreate itself) per create.
// It shows in `lvs -o +lv_tags` and nowhere else (libvirt's volume XML has no tags).
import { checkCreateId } from '../create-id.js';

export const CREATE_TAG_PREFIX = 'cistern.create.';

/** The tag of the create with this id: `cistern.create.<id>`. */
export function createTag(createId: string): string {
  return `${CREATE_TAG_PREFIX}${checkCreateId(createId)}`;
}

/** `--select` arguments that limit an LVM command to LVs carrying `tag` (all named LVs else). */
export function selectTagged(tag: string | undefined): string[] {
  // {…}: the LV's tags include this one (it may have others)
  return tag === undefined ? [] : ['--select', `lv_tags={${tag}}`];
}

// A build's VG carries `cistern.build.<id>` from its vgcreate until the build is done (then
// `vgchange --deltag`: builds are rare, one more metadata commit does not matter there), so
// the agent's clean-up of a build its death interrupted removes that VG and no same-named
// one made since.
export const BUILD_TAG_PREFIX = 'cistern.build.';

/** The tag of the build with this id: `cistern.build.<id>`. */
export function buildTag(buildId: string): string {
  return `${BUILD_TAG_PREFIX}${checkCreateId(buildId, 'buildId')}`;
}

/** `--select` arguments that limit an LVM command to VGs carrying `tag`. */
export function selectTaggedVg(tag: string): string[] {
  return ['--select', `vg_tags={${tag}}`];
}
