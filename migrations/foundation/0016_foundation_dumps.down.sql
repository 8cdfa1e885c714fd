-- Undo 0016_foundation_dumps.up.sql.
SELECT foundation.forget_in_dumps(ARRAY['foundation.feature_flags']::regclass[]);
DROP TRIGGER feature_flags_merge_restored ON foundation.feature_flags;
DROP FUNCTION foundation.merge_on_restore(regclass);
DROP FUNCTION foundation.merge_restored_row();
DROP FUNCTION foundation.forget_in_dumps(regclass[]);
DROP FUNCTION foundation.keep_in_dumps(regclass[]);
DROP FUNCTION foundation.dumped_relations(regclass[]);
