/* Every built-in norm variant and the reference on bf16 rows (RMSNorm and LayerNorm, bf16 and f32
 * output, H of the models, rows 1-256), interleaved, fastest of 15 rounds, ns per call; "picked":
 * what the avx512bf16 table ran and its time over the fastest variant's (before the norm rule). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include "moe/moe.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(void){
  int64_t rowsl[]={1,2,4,16,64,256}; int cols[]={2048,2880,7168,8192};
  const struct moe_builtin *v[16]; int nv=0;
  for(size_t i=0;i<moe_builtin_count();i++){const struct moe_builtin*b=moe_builtin_at(i); if(i==0||b->op==MOE_OP_NORM) v[nv++]=b;}
  size_t maxn=256*8192; uint16_t*x=malloc(2*maxn); uint16_t*w=malloc(2*8192); float*y=malloc(4*maxn);
  uint64_t s=1; for(size_t i=0;i<maxn;i++){s=s*6364136223846793005ull+1442695040888963407ull; float f=((int)(s>>40)%2001-1000)/300.0f; uint32_t u; memcpy(&u,&f,4); x[i]=u>>16;}
  for(int i=0;i<8192;i++){float f=1.0f+(i%7)*0.01f; uint32_t u; memcpy(&u,&f,4); w[i]=u>>16;}
  for(int kind=0;kind<2;kind++) for(int od=0;od<2;od++) for(int ci=0;ci<4;ci++) for(int ri=0;ri<6;ri++){
    struct moe_norm_params p={.kind=kind?MOE_NORM_LAYERNORM:MOE_NORM_RMSNORM,.rows=rowsl[ri],.cols=cols[ci],.eps=1e-6f,.in_dtype=MOE_DTYPE_BF16,.weight_dtype=MOE_DTYPE_BF16,.out_dtype=od?MOE_DTYPE_F32:MOE_DTYPE_BF16};
    double best[16]; for(int i=0;i<nv;i++)best[i]=1e30;
    double work=(double)p.rows*p.cols; int calls=(int)(200000/work)+1;
    for(int rep=0;rep<15;rep++) for(int i=0;i<nv;i++){
      if(!moe_backend_provides(v[i]->table,MOE_OP_NORM,&p)||v[i]->isa>moe_isa_hardware()){best[i]=-1;continue;}
      double t0=now(); for(int c=0;c<calls;c++) v[i]->table->norm(&p,x,w,y); double d=(now()-t0)/calls; if(d<best[i])best[i]=d;}
    const struct moe_builtin*pk=moe_builtin_pick(MOE_ISA_AVX512_BF16,MOE_OP_NORM,&p);
    double bmin=1e30; for(int i=1;i<nv;i++) if(best[i]>0&&best[i]<bmin)bmin=best[i];
    double bp=0; for(int i=0;i<nv;i++) if(v[i]==pk)bp=best[i];
    printf("%s %s-out H=%d rows=%lld |",kind?"layernorm":"rmsnorm",od?"f32":"bf16",cols[ci],(long long)p.rows);
    for(int i=0;i<nv;i++) printf(" %s %.0f", i?v[i]->table->name+9:"ref", best[i]);
    printf(" | picked %s %.2fx best\n", pk->table->name, bp/bmin);
    fflush(stdout);
  }
}
