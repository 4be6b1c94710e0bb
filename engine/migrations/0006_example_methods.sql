-- How each example was made: from a retrieved row (rebase) or by the teacher from the task alone (synthesize,
-- the baseline ReBase is compared with), and with which prompt wording (default, or the paper's). Examples
-- made before these columns existed were all made from rows with the default wording.
alter table examples add column method varchar default 'rebase';
alter table examples add column prompt varchar default 'default';
